import { Type } from '@sinclair/typebox';

/** A session a migration waited for (pg_blocking_pids); its query scrubbed of literals and secrets. */
export const Blocker = Type.Object({
  pid: Type.Integer(),
  applicationName: Type.String(),
  user: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([Type.String(), Type.Null()]),
  transactionAgeSeconds: Type.Union([Type.Number(), Type.Null()]),
  stateAgeSeconds: Type.Union([Type.Number(), Type.Null()]),
  query: Type.String({ description: 'First 200 characters, string literals and URL/password-like text removed' }),
});

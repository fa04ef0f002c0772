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

export const Progress = Type.Union([
  Type.Object({
    migration: Type.Union([Type.String(), Type.Null()]),
    phase: Type.String({ description: "'migrating', or the progress view's command and phase, e.g. 'create index: building index: scanning table'" }),
    done: Type.Number(),
    total: Type.Number(),
    etaSeconds: Type.Union([Type.Number(), Type.Null()]),
  }, { description: 'The running step of an apply: which migration, and for index builds and CLUSTER/VACUUM FULL the blocks (or tuples) done of total' }),
  Type.Null(),
]);

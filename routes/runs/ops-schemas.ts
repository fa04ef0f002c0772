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
    migration: Type.Union([Type.String(), Type.Null()], { description: 'The running migration; null during the backup and the restore' }),
    phase: Type.String({ description: "'backup' (pg_dump writing), 'backup: verifying' (sha256, pg_restore --list), 'migrating', the progress view's command and phase (e.g. 'create index: building index: scanning table'), 'restore' (pg_restore)" }),
    done: Type.Number(),
    total: Type.Number({ description: '0 when unknown' }),
    unit: Type.Optional(Type.Union([Type.Literal('migrations'), Type.Literal('blocks'), Type.Literal('tuples'), Type.Literal('bytes')], { description: 'What done and total count' })),
    etaSeconds: Type.Union([Type.Number(), Type.Null()]),
    bytesPerSecond: Type.Optional(Type.Number({ description: 'backup, restore: bytes per second since the tool started' })),
    totalBasis: Type.Optional(Type.Union([Type.Literal('previous-backup'), Type.Literal('database-size'), Type.Literal('file-size')], {
      description: "backup: 'previous-backup' (the database size times the last dump's dump/database ratio) or 'database-size' (an upper bound of the compressed dump: the ratio runs low and the ETA high); backup: verifying and restore: 'file-size' (exact)",
    })),
    databaseSizeBytes: Type.Optional(Type.Number({ description: 'backup: pg_database_size of the target when the dump began' })),
  }, { description: 'The running step of an apply, rollback or restore: the backup (bytes of the dump written), which migration, for index builds and CLUSTER/VACUUM FULL the blocks (or tuples) done of total, the restore (bytes of the dump read)' }),
  Type.Null(),
]);

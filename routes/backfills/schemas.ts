import { Type, type Static } from '@sinclair/typebox';
import { BACKFILL_STATUSES } from '../../database/sql/backfill-schema.js';

const EnvironmentName = Type.String({ minLength: 1, maxLength: 40, pattern: '^[a-z][a-z0-9_-]*$' });
const BackfillName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'File name (without .json) of a definition in the environment\'s backfills directory' });
const Iso = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const BatchSize = Type.Integer({ minimum: 1, maximum: 100_000, description: 'Keys per batch transaction (default 1000); halved on a failing batch, down to single rows' });
const MaxRowsPerSecond = Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()], { description: 'Throttle (rows visited per second); null or absent = unthrottled' });
const WindowOnly = Type.Boolean({ description: "Work only inside the environment's maintenance windows (and never in a freeze)" });
const Reason = Type.String({ minLength: 1, maxLength: 500 });

export const BackfillId = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });

export const CreateBackfillBody = Type.Object(
  {
    environment: EnvironmentName,
    name: BackfillName,
    batchSize: Type.Optional(BatchSize),
    maxRowsPerSecond: Type.Optional(MaxRowsPerSecond),
    windowOnly: Type.Optional(WindowOnly),
    failuresOf: Type.Optional(Type.String({ format: 'uuid', description: 'Re-run only the rows job <failuresOf> recorded as failed (same backfill name; that job must have stopped)' })),
    reason: Type.Optional(Reason),
  },
  { additionalProperties: false },
);
export type CreateBackfillBody = Static<typeof CreateBackfillBody>;

export const RetryFailuresBody = Type.Union([
  Type.Object(
    {
      batchSize: Type.Optional(BatchSize),
      maxRowsPerSecond: Type.Optional(MaxRowsPerSecond),
      windowOnly: Type.Optional(WindowOnly),
      reason: Type.Optional(Reason),
    },
    { additionalProperties: false },
  ),
  Type.Null(),
]);
export type RetryFailuresBody = Static<typeof RetryFailuresBody>;

export const ControlBody = Type.Union([
  Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
  Type.Null(),
]);
export type ControlBody = Static<typeof ControlBody>;

export const ListBackfillsQuery = Type.Object(
  {
    environment: Type.Optional(EnvironmentName),
    status: Type.Optional(Type.Union(BACKFILL_STATUSES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  },
  { additionalProperties: false },
);
export type ListBackfillsQuery = Static<typeof ListBackfillsQuery>;

export const FailuresQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    after: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Failure id to continue after (nextAfter of the previous page)' })),
  },
  { additionalProperties: false },
);
export type FailuresQuery = Static<typeof FailuresQuery>;

export const DefinitionsQuery = Type.Object({ environment: EnvironmentName }, { additionalProperties: false });
export type DefinitionsQuery = Static<typeof DefinitionsQuery>;

export const BackfillJob = Type.Object({
  id: Type.String({ format: 'uuid' }),
  environment: Type.String(),
  name: Type.String(),
  status: Type.String({ enum: [...BACKFILL_STATUSES] }),
  description: Nullable(Type.String()),
  table: Type.String(),
  keyColumn: Type.String(),
  definitionSha256: Type.String({ description: 'sha256 of the definition file the job was started with' }),
  failuresOf: Nullable(Type.String({ description: 'The job whose failed rows this job re-runs' })),
  batchSize: Type.Integer(),
  maxRowsPerSecond: Type.Union([Type.Integer(), Type.Null()]),
  windowOnly: Type.Boolean(),
  lastKey: Nullable(Type.String({ description: 'Checkpoint: the last key whose batch committed (failed-row id for a failures job)' })),
  rowsDone: Type.Integer({ description: 'Rows the batch statements changed' }),
  rowsFailed: Type.Integer({ description: 'Rows recorded as failed and skipped' }),
  rowsScanned: Type.Integer({ description: 'Keys visited' }),
  batches: Type.Integer(),
  openFailures: Type.Integer({ description: 'Failed rows of this job no later job has fixed' }),
  remainingRows: Type.Union([Type.Integer(), Type.Null()], { description: "The definition's remaining-rows count when last read" }),
  remainingAt: Nullable(Iso),
  progress: Type.Union([Type.Number(), Type.Null()], { description: '0..1' }),
  rowsPerSecond: Type.Union([Type.Number(), Type.Null()]),
  maxBatchMs: Type.Union([Type.Integer(), Type.Null()], { description: 'Longest batch transaction so far' }),
  waiting: Nullable(Type.String({ description: 'Why the job is not running a batch right now (window, pressure)' })),
  lease: Type.Union([Type.Object({ owner: Type.String(), expiresAt: Iso }), Type.Null()], { description: 'The executing process and its lease' }),
  createdBy: Type.String(),
  createdAt: Iso,
  updatedAt: Iso,
  startedAt: Nullable(Iso),
  finishedAt: Nullable(Iso),
  lastError: Nullable(Type.String()),
}, { $id: 'BackfillJob' });

export const BackfillList = Type.Object({ items: Type.Array(Type.Ref('BackfillJob')) });

export const BackfillFailures = Type.Object({
  items: Type.Array(Type.Object({
    id: Type.Integer(),
    key: Type.String(),
    error: Type.String(),
    sqlstate: Nullable(Type.String()),
    at: Iso,
    resolvedAt: Nullable(Iso),
    resolvedBy: Nullable(Type.String({ description: 'The failures job that fixed the row' })),
  })),
  nextAfter: Type.Union([Type.Integer(), Type.Null()]),
});

export const BackfillEvents = Type.Array(Type.Object({
  id: Type.String(),
  jobId: Type.String(),
  environment: Type.String(),
  type: Type.String(),
  actor: Type.String(),
  from: Nullable(Type.String()),
  to: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown()),
  at: Iso,
}));

export const BackfillDefinitions = Type.Object({
  environment: Type.String(),
  items: Type.Array(Type.Object({
    name: Type.String(),
    file: Type.String(),
    valid: Type.Boolean(),
    error: Nullable(Type.String()),
    description: Nullable(Type.String()),
    table: Nullable(Type.String()),
    keyColumn: Nullable(Type.String()),
    batch: Nullable(Type.String()),
    remaining: Nullable(Type.String()),
    sha256: Nullable(Type.String()),
  })),
});

import { Type, type Static } from '@sinclair/typebox';

const EnvironmentName = Type.String({ minLength: 1, maxLength: 40, pattern: '^[a-z][a-z0-9_-]*$' });
const Iso = Type.String({ format: 'date-time' });

export const EtlHealthQuery = Type.Object({ environment: EnvironmentName }, { additionalProperties: false });
export type EtlHealthQuery = Static<typeof EtlHealthQuery>;

export const EtlHealth = Type.Object({
  environment: Type.String(),
  backlog: Type.Integer({ description: 'Unprocessed hero snapshots (counting stops at 1,000,000)' }),
  oldestUnprocessedAgeSeconds: Type.Number({ description: 'Age of the oldest unprocessed snapshot; 0 when there is none' }),
  processedLastHour: Type.Integer(),
  failedLastHour: Type.Integer({ description: 'etl_errors rows written in the last hour' }),
  recentErrors: Type.Array(Type.Object({
    id: Type.String(),
    snapshotId: Type.Union([Type.String(), Type.Null()]),
    errorType: Type.String(),
    message: Type.String(),
    createdAt: Iso,
  }), { description: 'The 10 newest etl_errors rows, newest first' }),
  paused: Type.Boolean(),
  pausedBy: Type.Union([Type.String(), Type.Null()]),
  pauseReason: Type.Union([Type.String(), Type.Null()]),
  changedAt: Type.Union([Iso, Type.Null()], { description: 'When etl_control last changed' }),
});

export const EtlControlBody = Type.Object(
  {
    environment: EnvironmentName,
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);
export type EtlControlBody = Static<typeof EtlControlBody>;

export const EtlControlState = Type.Object({
  environment: Type.String(),
  paused: Type.Boolean(),
  pausedBy: Type.Union([Type.String(), Type.Null()]),
  pauseReason: Type.Union([Type.String(), Type.Null()]),
  changedAt: Iso,
  changed: Type.Boolean({ description: 'false when the flag already had this value: nothing changed and nothing was audited' }),
});

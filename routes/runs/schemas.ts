import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { RUN_STATUSES } from '../../services/runs/state-machine.js';
import { Promotion } from './policy-schemas.js';
import { Blocker, Progress } from './ops-schemas.js';

const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.-]+$' });
const Iso = Type.String({ format: 'date-time' });

/**
 * T or null, as OpenAPI 3.0 writes it (the published document is the same as
 * for Type.Union([T, Type.Null()])). fast-json-stringify serializes it with a
 * null check, where a union costs an Ajv validation of each branch per value.
 */
const Nullable = <T extends TSchema>(schema: T) => Type.Unsafe<Static<T> | null>({ ...schema, nullable: true });

export const RunId = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });

export const CreateRunBody = Type.Object(
  {
    environment: Type.String({ minLength: 1, maxLength: 40, pattern: '^[a-z][a-z0-9_-]*$' }),
    description: Type.String({ minLength: 1, maxLength: 500 }),
    ticket: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    to: Type.Optional(Name),
    schedule: Type.Optional(
      Type.Object(
        {
          mode: Type.Union([Type.Literal('window'), Type.Literal('now'), Type.Literal('at')]),
          at: Type.Optional(Iso),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CreateRunBody = Static<typeof CreateRunBody>;

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' })),
});

export const ListRunsQuery = Type.Object(
  {
    environment: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    status: Type.Optional(Type.Union(RUN_STATUSES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20 })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);
export type ListRunsQuery = Static<typeof ListRunsQuery>;

export const ApprovalBody = Type.Object(
  {
    role: Type.Union([Type.Literal('engineering'), Type.Literal('sre')]),
    decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type ApprovalBody = Static<typeof ApprovalBody>;

export const CancelBody = Type.Union([
  Type.Object({ reason: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false }),
  Type.Null(),
]);

export const Run = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    environment: Type.String(),
    status: Type.String({ enum: [...RUN_STATUSES] }),
    description: Type.String(),
    ticket: Nullable(Type.String()),
    to: Nullable(Type.String()),
    requestedBy: Type.String(),
    createdAt: Iso,
    updatedAt: Iso,
    schedule: Type.Object({ mode: Type.String(), at: Type.Optional(Type.String()) }),
    scheduledFor: Nullable(Iso),
    migrations: Type.Array(Type.Object({ name: Type.String(), sha256: Type.String() })),
    digest: Type.String(),
    requiredApprovals: Type.Array(Type.String()),
    approvals: Type.Array(
      Type.Object({
        subject: Type.String(),
        role: Type.String(),
        decision: Type.String(),
        comment: Type.String(),
        digest: Type.String(),
        current: Type.Boolean({ description: 'true when it approved the digest the run carries now' }),
        at: Iso,
      }),
    ),
    backup: Nullable(
      Type.Object({
        id: Type.String(),
        method: Type.String(),
        sizeBytes: Nullable(Type.Integer()),
        sha256: Nullable(Type.String()),
        verifiedAt: Nullable(Iso),
      }),
    ),
    error: Nullable(
      Type.Object(
        {
          code: Type.String(),
          message: Type.String(),
          phase: Type.Optional(Nullable(Type.String())),
          migration: Type.Optional(Nullable(Type.String())),
          statement: Type.Optional(Nullable(Type.String())),
          sqlState: Type.Optional(Nullable(Type.String())),
          partial: Type.Optional(Nullable(Type.Array(Type.String()))),
          blockers: Type.Optional(Type.Array(Blocker, { description: 'lock-timeout: the sessions the last attempt waited for' })),
        },
        { description: 'Why the run stopped: for a failed apply the migration, statement, SQLSTATE and what may have partly landed' },
      ),
    ),
    progress: Type.Optional(Progress),
    watch: Type.Optional(Nullable(Type.Object({
      startedAt: Iso,
      endsAt: Iso,
      verdict: Type.Union([Type.Literal('healthy'), Type.Literal('degraded'), Type.Null()], { description: 'null while the watch runs' }),
      endedAt: Nullable(Iso),
      endedEarly: Type.Boolean({ description: 'Ended before endsAt by POST /v1/runs/:id/watch/end or an approved rollback/restore' }),
    }, { description: 'The post-apply watch (null before it started)' }))),
  },
  { $id: 'Run' },
);

export const RunList = Type.Object({ items: Type.Array(Type.Ref('Run')), nextCursor: Nullable(Type.String()) });

export const AuditEvent = Type.Object({
  id: Type.Integer(),
  runId: Type.Union([Type.String(), Type.Null()]),
  environment: Type.String(),
  type: Type.String(),
  actor: Type.String(),
  from: Type.Union([Type.String(), Type.Null()]),
  to: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown()),
  at: Iso,
});

export const PreflightQuery = Type.Object(
  { format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('md')])) },
  { additionalProperties: false },
);

export const PreflightReport = Type.Object({
  createdAt: Iso,
  report: Type.Object({}, { additionalProperties: true }),
});

export const ApplyBody = Type.Object(
  {
    confirm: Type.String({ minLength: 1, maxLength: 40, description: 'Must equal the environment name' }),
    overrideWindow: Type.Optional(Type.Boolean({ description: 'Outside a window: ask for a window override (needs a reason); an sre other than the caller approves it, which starts the apply' })),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type ApplyBody = Static<typeof ApplyBody>;

export const ReapplyBody = Type.Object(
  {
    confirm: Type.String({ minLength: 1, maxLength: 40, description: 'Must equal the environment name' }),
    reason: Type.String({ minLength: 1, maxLength: 2000, description: 'Why the interrupted run is re-applied (audited)' }),
    overrideWindow: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ReapplyBody = Static<typeof ReapplyBody>;

export const CloseBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 2000, description: 'Why the interrupted run is closed (audited)' }) },
  { additionalProperties: false },
);
export type CloseBody = Static<typeof CloseBody>;

export const RollbackBody = Type.Object(
  {
    mode: Type.Union([Type.Literal('down'), Type.Literal('restore')]),
    confirm: Type.String({ minLength: 1, maxLength: 40, description: 'Must equal the environment name' }),
    reason: Type.String({ minLength: 1, maxLength: 2000 }),
    overrideWindow: Type.Optional(Type.Boolean({ description: 'Outside the windows: start as soon as an sre approves (the approval co-signs the override) instead of at the next window' })),
  },
  { additionalProperties: false },
);
export type RollbackBody = Static<typeof RollbackBody>;

export const RollbackDecisionBody = Type.Object(
  {
    decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
    planDigest: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'Required to approve: the digest of the plan approved (GET /v1/runs/:id/rollback/plan); 409 when the plan changed' })),
  },
  { additionalProperties: false },
);
export type RollbackDecisionBody = Static<typeof RollbackDecisionBody>;

export const RollbackRequest = Type.Object({
  id: Type.String({ format: 'uuid' }),
  runId: Type.String({ format: 'uuid' }),
  mode: Type.String(),
  status: Type.String({ enum: ['awaiting_approval', 'scheduled', 'running', 'succeeded', 'failed', 'rejected', 'cancelled'] }),
  requestedBy: Type.String(),
  reason: Type.String(),
  decidedBy: Type.Union([Type.String(), Type.Null()]),
  decisionComment: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  createdAt: Iso,
  updatedAt: Iso,
  overrideWindow: Type.Boolean(),
  scheduledFor: Nullable(Iso),
  plan: Type.Union([Type.Ref('RollbackPlan'), Type.Null()], { description: 'What it would do, as planned when it was asked for' }),
  planDigest: Nullable(Type.String()),
  approvedPlan: Type.Union([Type.Ref('RollbackPlan'), Type.Null()], { description: 'The plan its approver approved (by digest)' }),
  approvedPlanDigest: Nullable(Type.String()),
});

export const ReportQuery = PreflightQuery;

export const RunReport = Type.Object({
  apply: Type.Union([Type.Object({ createdAt: Iso, report: Type.Object({}, { additionalProperties: true }) }), Type.Null()]),
  rollback: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  promotion: Type.Optional(Promotion),
});

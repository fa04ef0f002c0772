import { Type, type Static, type TSchema } from '@sinclair/typebox';

// Schemas of the operating-policy routes: window overrides, rollback plans.

const Iso = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(schema: T) => Type.Unsafe<Static<T> | null>({ ...schema, nullable: true });
const Span = Type.Object({ start: Iso, end: Iso });

export const WindowOverride = Type.Object({
  id: Type.String({ format: 'uuid' }),
  runId: Type.String({ format: 'uuid' }),
  digest: Type.String({ description: 'The run digest the override was asked for; new content needs a new override' }),
  status: Type.String({ enum: ['awaiting_approval', 'approved', 'rejected', 'expired'] }),
  requestedBy: Type.String(),
  reason: Type.String(),
  decidedBy: Nullable(Type.String()),
  decisionComment: Nullable(Type.String()),
  decidedAt: Nullable(Iso),
  createdAt: Iso,
});

export const OverrideDecisionBody = Type.Object(
  {
    decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type OverrideDecisionBody = Static<typeof OverrideDecisionBody>;

export const RollbackPlanQuery = Type.Object(
  { mode: Type.Union([Type.Literal('down'), Type.Literal('restore')], { description: 'down: the run\'s down migrations; restore: its backup' }) },
  { additionalProperties: false },
);
export type RollbackPlanQuery = Static<typeof RollbackPlanQuery>;

const AtRisk = Type.Object({
  kind: Type.String({ enum: ['table', 'column', 'rows'] }),
  migration: Nullable(Type.String()),
  table: Type.String(),
  column: Nullable(Type.String()),
  exists: Type.Boolean(),
  rows: Nullable(Type.Integer({ description: 'Rows (a table) or rows holding a value (a column), counted exactly up to the bound' })),
  rowsExact: Type.Boolean({ description: 'false: more rows than `rows` (the count stopped at its bound) or not counted' }),
  bytes: Nullable(Type.Integer()),
  statement: Nullable(Type.String()),
  note: Nullable(Type.String()),
});

export const RollbackPlan = Type.Object(
  {
    runId: Type.String({ format: 'uuid' }),
    environment: Type.String(),
    mode: Type.String({ enum: ['down', 'restore'] }),
    computedAt: Iso,
    digest: Type.String({ description: 'What an approval names (POST /v1/runs/:id/rollback/approvals {"planDigest"}); row counts enter it by order of magnitude' }),
    blockers: Type.Array(Type.String()),
    window: Type.Object({ hasWindows: Type.Boolean(), open: Type.Boolean(), current: Nullable(Span), next: Nullable(Span) }),
    down: Nullable(Type.Object({
      migrations: Type.Array(Type.Object({
        name: Type.String(),
        reversible: Type.Boolean({ description: 'Its down ran cleanly in the preflight rehearsal and restored the schema its up found' }),
        sql: Nullable(Type.Array(Type.String())),
        why: Type.Optional(Type.String({ description: 'Why it is not reversible (absent when it is)' })),
      })),
      drops: Type.Array(AtRisk),
    })),
    restore: Nullable(Type.Object({
      backup: Type.Object({
        id: Type.String(), method: Type.String(), createdAt: Iso, verifiedAt: Nullable(Iso), ageSeconds: Type.Integer(), sizeBytes: Nullable(Type.Integer()),
      }),
      writesSinceBackup: Type.Object({
        known: Type.Boolean(),
        countersTakenAt: Nullable(Iso),
        tables: Type.Array(Type.Object({ table: Type.String(), inserted: Type.Integer(), updated: Type.Integer(), deleted: Type.Integer(), sinceCreated: Type.Boolean() })),
        total: Type.Object({ inserted: Type.Integer(), updated: Type.Integer(), deleted: Type.Integer() }),
        note: Nullable(Type.String()),
      }),
      tablesDropped: Type.Array(AtRisk),
    })),
    notes: Type.Array(Type.String()),
  },
  { $id: 'RollbackPlan' },
);

export const Promotion = Nullable(Type.Object({
  environment: Type.String(),
  runId: Type.String({ format: 'uuid' }),
  digest: Type.String(),
  succeededAt: Nullable(Iso),
  link: Type.String(),
}, { description: 'The earlier run whose success this run was promoted from (environments with `requires`)' }));

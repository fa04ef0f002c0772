import type pg from 'pg';
import { rows } from '../../../database/db.js';
import { userIndexes, userTables } from '../../../database/sql/preflight.js';
import { smokeEtl, type SmokeOutcome } from '../../etl/smoke.js';
import type { StepOutcome } from '../../migrations/run-one.js';
import { diffFingerprints, type FingerprintChange, type SchemaFingerprint } from '../../migrations/schema-fingerprint.js';
// From the observer's own modules, not the index: the index also re-exports the judge, which reads report types that read ours.
import { beginObserved, collectObserved, installObserver, observeNewRelationsOnly, observerQueriesBefore, stopObserver } from '../observe/install.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';
import type { DataRehearsal } from '../data-rehearsal/data-rehearsal.js';
import type { ClusterGuard } from './cluster-guard.js';
import { eachMigration, inBackground, type PhaseRun } from './each-migration.js';
import { isNoDown, ownDownDiff } from './reversibility.js';
import { replayHistory } from './seed.js';
import { inSession } from './session.js';
import type { DownDiff, MigrationTrace, Phase, RehearsalInput, RehearsalStep, Reversibility, SchemaChange } from './types.js';

// The three phases of a rehearsal, each on its own session (session.ts).

export interface PhaseContext {
  input: RehearsalInput;
  /** The copy. */
  url: string;
  secrets: string[];
  guard: ClusterGuard;
  /**
   * Reads the copy's committed schema, on sessions of its own (services/migrations/schema-fingerprint.ts
   * fingerprintReader: one per rehearsal); `hint`: the relations likely changed since the last read.
   */
  fingerprint: (hint?: readonly number[]) => Promise<SchemaFingerprint>;
  /** Reads the copy's committed tables and the linter's catalog facts, on another session of its own. */
  catalog: () => Promise<{ tables: string[]; facts: SchemaFacts }>;
  /**
   * Both of the above, the facts read incrementally beside the fingerprint: the schema right before an up, and
   * the relations that changed since the last read (what the migration before it changed).
   */
  before: () => Promise<{ fingerprint: SchemaFingerprint; tables: string[]; facts: SchemaFacts; changed: number[] }>;
  steps: RehearsalStep[];
  /** data-bearing rehearsal (issue 18): with rows on the copy, the ups are timed statement by statement with their locks. */
  data: DataRehearsal | null;
}

const run = (ctx: PhaseContext, direction: 'up' | 'down', names: string[], measure?: PhaseRun['measure']): PhaseRun =>
  ({ env: ctx.input.environment, secrets: ctx.secrets, source: ctx.input.source, direction, names, measure });

const tableNames = async (client: pg.ClientBase) => (await rows<{ name: string }>(client, userTables())).map((r) => r.name);

function record(ctx: PhaseContext, phase: Phase, expected: string, outcome: StepOutcome): RehearsalStep {
  const step: RehearsalStep = { phase, migration: outcome.migration || expected, durationMs: outcome.durationMs, ok: !outcome.error, error: outcome.error };
  ctx.steps.push(step);
  return step;
}

export interface UpPhase {
  traces: Record<string, MigrationTrace>;
  /** The copy's schema right before each migration's up. */
  before: Map<string, SchemaFingerprint>;
  /** The relations each up changed (all but the last's, found by the read before the next): where its down most likely works. */
  changedBy: Map<string, number[]>;
  /** The migrations whose up succeeded, in order. */
  applied: string[];
  created: SchemaChange;
  dropped: SchemaChange;
  /** Where the copy stood when an up failed: what a static lint of the rest starts from. */
  stoppedAt: { tables: string[]; facts: SchemaFacts } | null;
  /** The failed up ran in a transaction (rolled back whole), so the downs of the ones before it still find their own schema. */
  cleanStop: boolean;
}

export async function upPhase(ctx: PhaseContext, replay: boolean): Promise<UpPhase> {
  const { input } = ctx;
  const result: UpPhase = { traces: {}, before: new Map(), changedBy: new Map(), applied: [], created: { tables: [], indexes: [] }, dropped: { tables: [], indexes: [] }, stoppedAt: null, cleanStop: true };
  await inSession(ctx.url, async (client) => {
    if (replay) await replayHistory(client, input, ctx.secrets, (migration, statements) => ctx.guard.afterStep({ migration, phase: 'up', statements }));
    const catalog = async (): Promise<SchemaChange> => ({ tables: await tableNames(client), indexes: (await rows<{ name: string }>(client, userIndexes())).map((r) => r.name) });
    // After seeding: the copy's own history is not observed.
    await installObserver(client, { url: ctx.url });
    await observeNewRelationsOnly(client, { schema: input.environment.migrationsSchema, name: input.environment.migrationsTable });
    await ctx.guard.baselineCopy(client);
    const start = await catalog();
    // Both on sessions of their own, while the migration runs (up to its COMMIT: eachMigration).
    const readBefore = async () => {
      const { fingerprint, tables, facts, changed } = await ctx.before();
      return { fingerprint, tablesBefore: tables, factsBefore: facts, changed };
    };
    const befores = new Map<string, ReturnType<typeof readBefore>>();
    // The cluster guard's comparison after the last migration, left running beside the next one's reads.
    let guarding: Promise<void> = Promise.resolve();
    // The reads before the migration that runs next (started by prefetch, before `after` of the one before it).
    let reading: Promise<unknown> = Promise.resolve();
    const measure: PhaseRun['measure'] = ctx.data ? (name, c, up) => ctx.data!.measure(name, c, up) : undefined;
    await eachMigration(client, run(ctx, 'up', input.pending, measure), {
      prefetch: (name) => {
        const read = readBefore();
        befores.set(name, read);
        reading = read;
        const previous = input.pending[input.pending.indexOf(name) - 1];
        return inBackground(read.then((before) => {
          result.before.set(name, before.fingerprint);
          if (previous !== undefined && befores.has(previous)) result.changedBy.set(previous, before.changed);
        }));
      },
      before: async (name) => {
        // The guard reads the copy on this session too: one query at a time on it.
        if (observerQueriesBefore(client)) await guarding;
        await beginObserved(client, name);
      },
      after: async (outcome, expected) => {
        const name = outcome.migration || expected;
        // node-pg-migrate refused it before it ran (no `prefetch`): the schema is still the one it found.
        if (!befores.has(name)) befores.set(name, readBefore());
        const [{ tablesBefore, factsBefore }, observed] = await Promise.all([befores.get(name)!, collectObserved(client, name)]);
        result.traces[name] = { statements: outcome.statements, transactional: outcome.transactional, tablesBefore, factsBefore, observed, source: 'rehearsal' };
        input.onTrace?.(name, result.traces[name]!, reading);
        record(ctx, 'up', expected, outcome);
        guarding = ctx.guard.afterStep({ migration: name, phase: 'up', statements: outcome.statements }, client);
        if (!outcome.error) {
          result.applied.push(name);
          // What the server and the copy hold outside the schema is compared while the next migration's reads go on.
          return inBackground(guarding);
        }
        await guarding;
        result.cleanStop = outcome.transactional;
        const { tables, facts } = await ctx.catalog();
        result.stoppedAt = { tables, facts };
      },
    });
    if (result.stoppedAt) return;
    const end = await catalog();
    result.created = { tables: end.tables.filter((t) => !start.tables.includes(t)), indexes: end.indexes.filter((t) => !start.indexes.includes(t)) };
    result.dropped = { tables: start.tables.filter((t) => !end.tables.includes(t)), indexes: start.indexes.filter((t) => !end.indexes.includes(t)) };
  });
  return result;
}

export interface DownPhase {
  reversibility: Record<string, Reversibility>;
  downDiffs: Record<string, DownDiff>;
  downStatements: Record<string, string[]>;
  /** Reverted, newest first. */
  reverted: string[];
}

/**
 * Every applied migration down, newest first, each compared with the schema
 * before its up. It stops at a down that fails, or that node-pg-migrate
 * refuses to run (no down): the older migrations cannot be reverted past it,
 * by the rehearsal or by a rollback.
 */
export async function downPhase(ctx: PhaseContext, up: UpPhase): Promise<DownPhase> {
  const result: DownPhase = { reversibility: {}, downDiffs: {}, downStatements: {}, reverted: [] };
  for (const name of ctx.input.pending) result.reversibility[name] = 'not-checked';
  await inSession(ctx.url, async (client) => {
    await stopObserver(client);
    let previous: Map<string, FingerprintChange> | null = null;
    let irreversible: string | null = null;
    // A down that sent nothing left the schema as it found it: the last read stands (most downs of some histories are empty).
    let lastRead: Promise<SchemaFingerprint> | null = null;
    // Each down's schema is read while the next down runs; the comparisons follow in order.
    let compared: Promise<void> = Promise.resolve();
    await eachMigration(client, run(ctx, 'down', [...up.applied].reverse()), {
      after: async (outcome, expected) => {
        const name = outcome.migration || expected;
        const step = record(ctx, 'down', expected, outcome);
        await ctx.guard.afterStep({ migration: name, phase: 'down', statements: outcome.statements }, client);
        if (outcome.error) {
          if (isNoDown(outcome.error)) {
            result.reversibility[name] = 'no-down';
            step.explainedBy = name;
          } else {
            step.explainedBy = irreversible;
          }
          return;
        }
        result.downStatements[name] = outcome.statements;
        result.reverted.push(name);
        const reading: Promise<SchemaFingerprint> = outcome.statements.length === 0 && lastRead ? lastRead : ctx.fingerprint(up.changedBy.get(name));
        lastRead = reading;
        compared = compared.then(async () => {
          const current = diffFingerprints(up.before.get(name)!, await reading);
          const own = ownDownDiff(current, previous);
          result.reversibility[name] = own ? 'irreversible' : 'reversible';
          if (own) {
            result.downDiffs[name] = own;
            irreversible ??= name;
          }
          previous = current;
        });
        return inBackground(compared);
      },
    });
  });
  return result;
}

export interface UpAgainPhase {
  /** Every reverted migration went up again. */
  complete: boolean;
  smoke: SmokeOutcome | null;
}

/**
 * The reverted migrations up again, oldest first: a down that does not
 * restore what its up expects fails here. A failure after a down the schema
 * diff already found irreversible is that down's doing.
 */
export async function upAgainPhase(ctx: PhaseContext, down: DownPhase, runSmoke: boolean): Promise<UpAgainPhase> {
  const irreversible = [...down.reverted].reverse().filter((n) => down.reversibility[n] === 'irreversible');
  return inSession(ctx.url, async (client) => {
    let complete = true;
    // data-bearing rehearsal (issue 18): the re-applied up is timed too; the lower time of the two ups is what gets scaled.
    const measure: PhaseRun['measure'] = ctx.data ? (name, c, up) => ctx.data!.measure(name, c, up, true) : undefined;
    await eachMigration(client, run(ctx, 'up', [...down.reverted].reverse(), measure), {
      after: async (outcome, expected) => {
        const name = outcome.migration || expected;
        const step = record(ctx, 'up-again', expected, outcome);
        const guarded = ctx.guard.afterStep({ migration: name, phase: 'up-again', statements: outcome.statements }, client);
        if (outcome.error) {
          step.explainedBy = irreversible.includes(name) ? name : irreversible[0] ?? null;
          complete = false;
        }
        // Compared while the next migration's function builds its steps (awaited before its first statement).
        return inBackground(guarded);
      },
    });
    if (!complete) return { complete: false, smoke: null };
    // The runbook's smoke ETL, on the copy: a migration that breaks the worker's writes fails here, before approval.
    const smoke = runSmoke && ctx.input.environment.verify.smokeEtl ? await smokeEtl(client, ctx.input.environment, ctx.input.runId) : null;
    return { complete: true, smoke };
  });
}

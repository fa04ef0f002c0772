import type pg from 'pg';
import { performance } from 'node:perf_hooks';
import { rows } from '../../database/db.js';
import { LINT_DB_PREFIX, REHEARSAL_DB_PREFIX, userTables } from '../../database/sql/preflight.js';
import { schemaFactsReader } from './catalog-facts.js';
import { fingerprintReader, GENERIC_PLANS, QUALIFIED_SESSION_OPTIONS, type RelationSignature } from '../migrations/schema-fingerprint.js';
import { ClusterGuard } from './rehearsal/cluster-guard.js';
import { globalsLedger } from './rehearsal/globals-ledger.js';
import { downPhase, upAgainPhase, upPhase, type DownPhase, type PhaseContext, type UpAgainPhase } from './rehearsal/phases.js';
import { seedCopy } from './rehearsal/seed.js';
import { openSession } from './rehearsal/session.js';
import { compareServers } from './rehearsal/server-identity.js';
import { readStaticMigrations } from './rehearsal/static-sql.js';
import { staticTraces } from './rehearsal/static-traces.js';
import type { RehearsalInput, RehearsalResult, RehearsalStep } from './rehearsal/types.js';
// data-bearing rehearsal (issue 18)
import { seedData } from './data-rehearsal/seed.js';

export type {
  ClusterObject, DownDiff, MigrationTrace, Phase, RehearsalInput, RehearsalResult, RehearsalServer, RehearsalStep, Reversibility, SchemaChange, StaticMigration, UpComplete,
} from './rehearsal/types.js';

/**
 * Rehearses the pending migrations on a throw-away copy of the target's
 * schema: up, down, up again, each phase on a new session. The target is only
 * read (pg_dump --schema-only); the copy is dropped whatever happens, and so
 * is anything its migrations created on the server outside it (roles,
 * databases, tablespaces, subscriptions), which the result names. Each down
 * is checked against the schema from before its up. When an up fails, the
 * migrations after it are read from their files instead, for the linter.
 */
export async function rehearse(input: RehearsalInput): Promise<RehearsalResult> {
  const started = performance.now();
  const secrets = [input.targetUrl, input.serverUrl];
  // The ledger keeps the guard's record in the control database too: a killed process leaves it for a sweep.
  const [compared, opened] = await Promise.allSettled([
    compareServers(input.targetUrl, input.serverUrl),
    ClusterGuard.open(input.serverUrl, { ignoreDatabasePrefixes: [REHEARSAL_DB_PREFIX, LINT_DB_PREFIX], ledger: globalsLedger(input) }),
  ]);
  if (compared.status === 'rejected' || opened.status === 'rejected') {
    if (opened.status === 'fulfilled') await opened.value.close();
    await input.copy?.created.then((db) => db.drop()).catch(() => undefined);
    throw compared.status === 'rejected' ? compared.reason : (opened as PromiseRejectedResult).reason;
  }
  const server = compared.value;
  const guard = opened.value;
  try {
    const { db, seededFrom, seedNote } = await seedCopy(input);
    // data-bearing rehearsal (issue 18): the target's rows into the copy, before the observer is installed.
    const data = input.environment.preflight.data === 'schema' ? null : await seedData({
      environment: input.environment, targetUrl: input.targetUrl, databaseUrl: db.url, schemaFrom: seededFrom,
      applied: input.applied.map((m) => m.name), latestBackup: input.latestBackup, secrets,
    }).catch(async (err) => {
      await db.drop();
      throw err;
    });
    const steps: RehearsalStep[] = [];
    // The copy's schema is read between migrations, when what ran before has committed: from two sessions of its own
    // (relations on one, the other objects on the other), opened with the settings the reads need (no saving and
    // restoring the phase session's own).
    // The linter's facts likewise, from a session with the search_path a migration session starts with.
    const opened = await Promise.allSettled([
      openSession(db.url, QUALIFIED_SESSION_OPTIONS), openSession(db.url, QUALIFIED_SESSION_OPTIONS), openSession(db.url, GENERIC_PLANS),
    ]);
    const failedOpen = opened.find((o) => o.status === 'rejected');
    if (failedOpen) {
      // The one that did open must not outlive the copy.
      for (const o of opened) if (o.status === 'fulfilled') await o.value.end().catch(() => undefined);
      await db.drop();
      throw (failedOpen as PromiseRejectedResult).reason;
    }
    const [reader, otherReader, lintSession] = opened.map((o) => (o as PromiseFulfilledResult<pg.Client>).value) as [pg.Client, pg.Client, pg.Client];
    const readFingerprint = fingerprintReader({ migrationsSchema: input.environment.migrationsSchema, migrationsTable: input.environment.migrationsTable }, { qualifiedSession: true });
    const readFacts = schemaFactsReader();
    // Prepared: the session plans it once (GENERIC_PLANS), not before every migration.
    const tables = async () => (await rows<{ name: string }>(lintSession, { ...userTables(), name: 'sfm-rehearsal-user-tables' })).map((r) => r.name);
    const ctx: PhaseContext = {
      input, url: db.url, secrets, guard, steps, data,
      fingerprint: (hint) => readFingerprint(reader, otherReader, { hint }),
      catalog: async () => {
        const names = await tables();
        return { tables: names, facts: await readFacts(lintSession) };
      },
      before: async () => {
        // The facts keep what did not change since the last read, by the signatures the fingerprint reads first.
        let signatures!: (sigs: RelationSignature[]) => void;
        const signed = new Promise<RelationSignature[]>((resolve) => (signatures = resolve));
        // One query at a time on the linter's session (pg would queue them, and warns).
        let changed: number[] = [];
        const [fingerprint, { names, facts }] = await Promise.all([
          readFingerprint(reader, otherReader, { onSignatures: signatures, onChanged: (oids) => (changed = oids) }),
          tables().then(async (names) => ({ names, facts: await readFacts(lintSession, signed) })),
        ]);
        return { fingerprint, tables: names, facts, changed };
      },
    };
    let up;
    let down: DownPhase = { reversibility: Object.fromEntries(input.pending.map((n) => [n, 'not-checked' as const])), downDiffs: {}, downStatements: {}, reverted: [] };
    let again: UpAgainPhase = { complete: false, smoke: null };
    try {
      up = await upPhase(ctx, seededFrom === 'replay');
      const allUp = up.applied.length === input.pending.length;
      // With every up done, the traces are final (no static ones are added for migrations not rehearsed).
      if (allUp) input.onUpComplete?.({ traces: up.traces, created: up.created, dropped: up.dropped, steps: [...steps] });
      if (allUp || up.cleanStop) down = await downPhase(ctx, up);
      // With nothing reverted (the newest has no down) the copy already stands where the run ends: the smoke ETL runs there.
      if (allUp || down.reverted.length) again = await upAgainPhase(ctx, down, allUp);
    } finally {
      // Subscriptions first (a database that has one cannot be dropped), the server-wide objects once the copy is gone.
      await Promise.all([reader, otherReader, lintSession].map((session) => session.end().catch(() => undefined)));
      if (input.deferCopyDrop && !guard.hasCreatedServerObjects()) {
        // Nothing server-wide waits for the copy to go: its drop goes on while the report is built.
        const dropping = db.drop();
        dropping.catch(() => undefined);
        input.deferCopyDrop(dropping);
      } else {
        await guard.beforeCopyDrop(db.url).catch(() => undefined);
        await db.drop();
      }
      await guard.cleanup();
    }

    const notRehearsed = input.pending.slice(up.applied.length + (up.stoppedAt ? 1 : 0));
    const staticStatements = await readStaticMigrations(input.source.dir, notRehearsed);
    const traces = { ...up.traces, ...(up.stoppedAt ? await staticTraces(notRehearsed, staticStatements, up.stoppedAt, input.targetServerMajor) : {}) };
    return {
      database: db.name,
      data: data?.result() ?? null,
      created: up.created,
      dropped: up.dropped,
      seededFrom,
      seedNote,
      steps,
      traces,
      downStatements: down.downStatements,
      failed: steps.find((s) => !s.ok && !s.explainedBy) ?? null,
      smoke: again.smoke,
      durationMs: Math.round(performance.now() - started),
      reversibility: down.reversibility,
      downDiffs: down.downDiffs,
      clusterObjects: guard.objects(),
      server,
      notRehearsed,
      staticStatements,
    };
  } finally {
    await guard.close();
  }
}

import { maybeOne, one, rows, type Query } from '../../database/db.js';
import { ledgerOfRun } from '../../database/sql/apply.js';
import { latestReport } from '../../database/sql/reports.js';
import type { RunRow } from '../../database/sql/runs.js';
import {
  connectionUsage, etlErrorsSince, existingIndexes, existingTables, invalidIndexList,
  longTransactionsOver, tableExists,
} from '../../database/sql/verify.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { smokeEtl, type SmokeOutcome } from '../etl/smoke.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import type { PreflightReport } from '../preflight/report.js';

export type { SmokeOutcome } from '../etl/smoke.js';

export interface VerificationCheck {
  id: string;
  /** skip: the check does not apply to this target (not configured: e.g. no ETL to smoke-test). */
  status: 'pass' | 'warn' | 'fail' | 'skip';
  /** The SQL the check ran, so the report can be pasted into the PR as the runbook asks. */
  query: string;
  observed: unknown;
  detail: string;
}

const qualify = (name: string) => (name.includes('.') ? name : `public.${name}`);

function check(id: string, status: VerificationCheck['status'], query: Query | string, observed: unknown, detail: string): VerificationCheck {
  return { id, status, query: typeof query === 'string' ? query : query.text.replace(/\s+/g, ' ').trim(), observed, detail };
}


/**
 * The runbook's post-apply verification, run right after migrating and before
 * workers resume. Each check records its query and what it saw.
 */
export async function verifyApply(ctx: ServiceContext, run: RunRow, env: EnvironmentConfig, applyStartedAt: Date): Promise<{ checks: VerificationCheck[]; smoke: SmokeOutcome | null }> {
  const checks: VerificationCheck[] = [];
  const expected = run.migrations.map((m) => m.name);
  const ledger = await rows<{ name: string; sha256: string }>(ctx.control, ledgerOfRun(run.id));
  const preflight = await maybeOne<{ body: PreflightReport }>(ctx.control, latestReport(run.id, 'preflight'));
  const rehearsal = preflight?.body.rehearsal;
  const wantTables = [...new Set([...(rehearsal?.created.tables ?? []), ...env.verify.tables.map(qualify)])].sort();
  const wantIndexes = [...new Set([...(rehearsal?.created.indexes ?? []), ...env.verify.indexes.map(qualify)])].sort();

  return ctx.targets.withClient(env, async (client) => {
    // 1. The migrations table lists exactly the run's migrations, last and in order; checksums match the ledger.
    const applied = await readAppliedMigrations(client, env);
    const tail = applied.slice(-expected.length).map((a) => a.name);
    const mismatched = run.migrations.filter((m) => ledger.find((l) => l.name === m.name)?.sha256 !== m.sha256).map((m) => m.name);
    const recorded = tail.join() === expected.join() && mismatched.length === 0;
    checks.push(check('migrations-applied', recorded ? 'pass' : 'fail',
      `SELECT name, run_on FROM ${env.migrationsSchema}.${env.migrationsTable} ORDER BY run_on, id`,
      { last: tail, ledgerMismatches: mismatched },
      recorded ? `${env.migrationsTable} lists the run's ${expected.length} migration(s) last and in order; their checksums match the ledger.`
        : `${env.migrationsTable} ends with ${tail.join(', ') || 'nothing'} (expected ${expected.join(', ')})${mismatched.length ? `; ledger checksums differ for ${mismatched.join(', ')}` : ''}.`));

    // 2. Connections and long transactions.
    const usage = await one<{ connections: number; max_connections: number }>(client, connectionUsage());
    const ratio = usage.connections / usage.max_connections;
    checks.push(check('connections', ratio >= 0.9 ? 'fail' : ratio >= 0.75 ? 'warn' : 'pass', connectionUsage(), usage,
      `${usage.connections} of max_connections ${usage.max_connections} in use.`));
    const long = await rows<{ pid: number; duration: object; query: string }>(client, longTransactionsOver(env.preflight.longTransactionSeconds));
    checks.push(check('long-transactions', long.length ? 'warn' : 'pass', longTransactionsOver(env.preflight.longTransactionSeconds), long.map((l) => ({ pid: l.pid, query: l.query })),
      long.length ? `${long.length} transaction(s) open longer than ${env.preflight.longTransactionSeconds} s.` : 'No long-running transaction.'));

    // 3. Expected tables and indexes: what the run's migrations create (from the rehearsal) plus the environment's list.
    const tables = (await rows<{ name: string }>(client, existingTables(wantTables))).map((r) => r.name);
    const missingTables = wantTables.filter((t) => !tables.includes(t));
    checks.push(check('expected-tables', missingTables.length ? 'fail' : 'pass', existingTables(wantTables), { expected: wantTables, missing: missingTables },
      missingTables.length ? `Missing tables: ${missingTables.join(', ')}.` : `All ${wantTables.length} expected table(s) exist.`));
    const indexes = await rows<{ name: string; indexdef: string }>(client, existingIndexes(wantIndexes));
    const missingIndexes = wantIndexes.filter((i) => !indexes.some((x) => x.name === i));
    checks.push(check('expected-indexes', missingIndexes.length ? 'fail' : 'pass', existingIndexes(wantIndexes), { expected: wantIndexes, missing: missingIndexes, found: indexes },
      missingIndexes.length ? `Missing indexes: ${missingIndexes.join(', ')}.` : `All ${wantIndexes.length} expected index(es) exist.`));

    // 4. No INVALID index: the trace of a failed CREATE INDEX CONCURRENTLY.
    const invalid = (await rows<{ name: string }>(client, invalidIndexList())).map((r) => r.name);
    checks.push(check('invalid-indexes', invalid.length ? 'fail' : 'pass', invalidIndexList(), invalid,
      invalid.length ? `INVALID indexes: ${invalid.join(', ')} (drop and rebuild them CONCURRENTLY).` : 'No INVALID index.'));

    // 5. Smoke ETL, where the target has the ETL (or the environment requires it).
    let smoke: SmokeOutcome | null = null;
    const smokeQuery = 'INSERT INTO hero_snapshots … ; worker batch ; SELECT … ; DELETE smoke rows';
    if (env.verify.smokeEtl) {
      smoke = await smokeEtl(client, env, run.id);
      checks.push(check('smoke-etl', smoke.notConfigured ? 'skip' : smoke.ran ? (smoke.ok ? 'pass' : 'fail') : 'warn', smokeQuery, smoke, smoke.detail));
    } else {
      checks.push(check('smoke-etl', 'skip', smokeQuery, null, 'Not configured: verify.smokeEtl is false.'));
    }

    // 6. No new etl_errors since the apply started.
    if ((await one<{ exists: boolean }>(client, tableExists('public.etl_errors'))).exists) {
      const errors = await rows<{ id: string; error_type: string; message: string }>(client, etlErrorsSince(applyStartedAt, null));
      checks.push(check('new-etl-errors', errors.length ? 'fail' : 'pass', etlErrorsSince(applyStartedAt, null), errors,
        errors.length ? `${errors.length} etl_errors row(s) since the apply started: ${errors.slice(0, 3).map((e) => `${e.error_type}: ${e.message}`).join('; ')}.` : 'No etl_errors since the apply started.'));
    } else {
      checks.push(check('new-etl-errors', 'skip', tableExists('public.etl_errors'), null, 'Not configured: the target has no etl_errors table (no StarForge ETL).'));
    }
    return { checks, smoke };
  });
}

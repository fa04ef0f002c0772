import { setTimeout as sleep } from 'node:timers/promises';
import { exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { APPLY_LOCK_CLASS, ledgerOfRun, mergeApplyState, upsertLedger } from '../../database/sql/apply.js';
import { invalidIndexes } from '../../database/sql/apply-target.js';
import { etlControlExists, readEtlControl } from '../../database/sql/etl-control.js';
import { insertReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import { applySessions, backendAlive, dropLease, inFlightRuns, terminateBackend, type InFlightRow } from '../../database/sql/scheduler.js';
import { appendEvent } from '../audit.js';
import { withRunLock } from '../background.js';
import type { ServiceContext } from '../context.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import type { ApplyReport } from './apply-service.js';

/** What a dead process left behind, found before the run is marked interrupted. */
export interface Reconciliation {
  at: string;
  previousStatus: string;
  lease: { owner: string | null; expiresAt: string | null };
  target: { reachable: boolean; error: string | null };
  /** Each of the run's migrations: recorded in the target's migrations table, in the control ledger. */
  migrations: Array<{ name: string; inTarget: boolean; inLedger: boolean }>;
  landed: string[];
  notLanded: string[];
  /** Landed on the target but missing from the ledger, or the other way round. */
  ledgerMismatch: string[];
  /** Landed but not ledgered (the process died before its ledger write): recorded now with the approved sha256. */
  ledgerRepaired: string[];
  invalidIndexes: Array<{ index: string; table: string }>;
  workers: { method: string; pausedByRun: boolean; etlControlPaused: boolean | null; etlControlReason: string | null };
  /** Sessions the dead apply still had open on the target (e.g. a statement still running); terminated so nothing lands later. */
  orphanedSessions: Array<{ pid: number; state: string | null; query: string; runningFor: string | null; terminated: boolean }>;
  advice: string[];
}

const IN_FLIGHT: RunStatus[] = ['applying', 'verifying', 'monitoring'];
const APPLY_APPLICATIONS = ['starforge-apply', 'starforge-pause'];

type ReconcileRun = RunRow & { apply_state?: { applied?: string[]; workersPaused?: boolean; workers?: { method?: string } }; lease_owner?: string | null; lease_expires_at?: Date | null };

/**
 * Looks at the target the way an SRE would after a crash: stops what the dead
 * apply still runs there, then lists which of the run's migrations landed,
 * any INVALID index, and whether ETL workers are still paused.
 */
export async function inspectInterrupted(ctx: ServiceContext, run: ReconcileRun): Promise<Reconciliation> {
  const r: Reconciliation = {
    at: new Date().toISOString(),
    previousStatus: run.status,
    lease: { owner: run.lease_owner ?? null, expiresAt: run.lease_expires_at ? new Date(run.lease_expires_at).toISOString() : null },
    target: { reachable: false, error: null },
    migrations: [], landed: [], notLanded: [], ledgerMismatch: [], ledgerRepaired: [], invalidIndexes: [],
    workers: { method: run.apply_state?.workers?.method ?? 'unknown', pausedByRun: run.apply_state?.workersPaused === true, etlControlPaused: null, etlControlReason: null },
    orphanedSessions: [],
    advice: [],
  };
  const ledger = new Set((await rows<{ name: string }>(ctx.control, ledgerOfRun(run.id))).map((l) => l.name));
  const env = ctx.config.environments[run.environment];
  let inTarget = new Set<string>();
  if (!env) {
    r.target.error = `environment "${run.environment}" is no longer configured`;
  } else {
    try {
      await ctx.targets.withClient(env, async (client) => {
        for (const s of await rows<{ pid: number; state: string | null; query: string; running_for: string | null }>(client, applySessions(APPLY_APPLICATIONS))) {
          const { terminated } = await one<{ terminated: boolean }>(client, terminateBackend(s.pid));
          r.orphanedSessions.push({ pid: s.pid, state: s.state, query: s.query, runningFor: s.running_for, terminated });
        }
        // A terminated backend rolls its transaction back as it exits: look only once it is gone.
        for (let i = 0; i < 100 && r.orphanedSessions.length; i++) {
          const alive = await Promise.all(r.orphanedSessions.map((s) => one<{ n: number }>(client, backendAlive(s.pid))));
          if (alive.every((a) => a.n === 0)) break;
          await sleep(100);
        }
        inTarget = new Set((await readAppliedMigrations(client, env)).map((m) => m.name));
        r.invalidIndexes = await rows<{ index: string; table: string }>(client, invalidIndexes());
        if ((await one<{ exists: boolean }>(client, etlControlExists())).exists) {
          const etl = await maybeOne<{ paused: boolean; reason: string | null }>(client, readEtlControl());
          r.workers.etlControlPaused = etl?.paused ?? null;
          r.workers.etlControlReason = etl?.reason ?? null;
        }
      });
      r.target.reachable = true;
    } catch (err) {
      r.target.error = (err as Error).message;
    }
  }
  for (const m of run.migrations) {
    const entry = { name: m.name, inTarget: inTarget.has(m.name), inLedger: ledger.has(m.name) };
    r.migrations.push(entry);
    (entry.inTarget ? r.landed : r.notLanded).push(m.name);
    if (r.target.reachable && entry.inTarget !== entry.inLedger) r.ledgerMismatch.push(m.name);
  }
  if (!r.target.reachable) r.advice.push(`The target could not be inspected (${r.target.error}); check it by hand before anything else.`);
  if (r.orphanedSessions.length) r.advice.push(`Terminated ${r.orphanedSessions.length} session(s) the dead apply still had open on the target, so nothing of it lands later.`);
  r.advice.push(r.landed.length
    ? `Landed: ${r.landed.join(', ')}${r.notLanded.length ? `; not landed: ${r.notLanded.join(', ')}` : ''}. Roll back (mode "down") what landed or restore the backup; nothing is re-applied automatically.`
    : 'None of the run\'s migrations landed; restore is not needed for the schema, but the run must be closed by an operator (rollback or restore).');
  r.ledgerRepaired = r.migrations.filter((m) => m.inTarget && !m.inLedger).map((m) => m.name);
  if (r.ledgerRepaired.length) r.advice.push(`${r.ledgerRepaired.join(', ')} landed before the process died but had no ledger entry yet; the ledger now records the approved checksum.`);
  const stray = r.ledgerMismatch.filter((n) => !r.ledgerRepaired.includes(n));
  if (stray.length) r.advice.push(`The ledger lists ${stray.join(', ')} but the target's migrations table does not: check the target by hand.`);
  if (r.invalidIndexes.length) r.advice.push(`INVALID index(es) remain: ${r.invalidIndexes.map((i) => `${i.index} on ${i.table}`).join(', ')}; drop them (DROP INDEX CONCURRENTLY) before retrying.`);
  if (r.workers.etlControlPaused || r.workers.pausedByRun) r.advice.push('ETL workers are still paused: resume them once the target is safe.');
  return r;
}

/**
 * Marks in-flight runs whose apply lock nobody holds as interrupted, with a
 * reconciliation in their report. At start-up every in-flight run is
 * checked; the periodic sweep only those whose lease lapsed. The lock is
 * taken before a run moves to applying and held to the end, so a free lock
 * means the process that ran the apply is gone. Never re-applies anything.
 */
export async function reconcileInterrupted(ctx: ServiceContext, opts: { expiredLeasesOnly?: boolean } = {}): Promise<string[]> {
  const { control, log } = ctx;
  const candidates = await rows<InFlightRow>(control, inFlightRuns(IN_FLIGHT, opts.expiredLeasesOnly ?? false));
  const interrupted: string[] = [];
  for (const { id } of candidates) {
    await withRunLock(control, APPLY_LOCK_CLASS, id, async () => {
      const run = await maybeOne<ReconcileRun>(control, selectRun(id));
      if (!run || !IN_FLIGHT.includes(run.status as RunStatus)) return;
      const reconciliation = await inspectInterrupted(ctx, run);
      const now = new Date().toISOString();
      const report: ApplyReport = {
        runId: id, environment: run.environment, outcome: 'interrupted', actor: 'system', startedAt: run.updated_at.toISOString(), finishedAt: now,
        backup: null, workers: null, migrations: [], lockRetries: 0,
        failure: { phase: 'interrupted', code: 'interrupted', message: `The process applying this run stopped while it was ${run.status}.` },
        verification: [], smoke: null, watch: null, notes: reconciliation.advice, reconciliation,
      };
      await transaction(control, async (client) => {
        const locked = await lockRunForUpdate(client, id);
        if (!IN_FLIGHT.includes(locked.status)) return;
        await exec(client, insertReport(id, 'apply', run.digest, report));
        // What rollback (down) reverts: exactly what is on the target now.
        if (reconciliation.target.reachable) await exec(client, mergeApplyState(id, { applied: reconciliation.landed }));
        for (const name of reconciliation.ledgerRepaired) {
          const m = run.migrations.find((x) => x.name === name)!;
          await exec(client, upsertLedger(run.environment, m.name, m.sha256, id));
        }
        if (reconciliation.ledgerRepaired.length) {
          await appendEvent(client, { runId: id, environment: run.environment, type: 'ledger.reconciled', actor: 'system', details: { landed: reconciliation.ledgerRepaired } });
        }
        await transition(client, locked, 'interrupted', {
          actor: 'system',
          details: {
            reason: 'the process running this apply stopped; check the target, then roll back or restore',
            landed: reconciliation.landed, notLanded: reconciliation.notLanded, invalidIndexes: reconciliation.invalidIndexes.map((i) => i.index),
            workersPaused: reconciliation.workers.etlControlPaused ?? reconciliation.workers.pausedByRun, terminatedSessions: reconciliation.orphanedSessions.length,
            lease: reconciliation.lease,
          },
          patch: { error: { code: 'interrupted', message: `The service stopped while this run was being applied (${run.status}); landed: ${reconciliation.landed.join(', ') || 'none'}. See the report, then roll back or restore.` } },
        });
        if (run.lease_owner) await exec(client, dropLease(id, run.lease_owner));
        interrupted.push(id);
      });
    });
  }
  if (interrupted.length) log.warn({ runs: interrupted }, 'marked runs interrupted by a previous process');
  return interrupted;
}

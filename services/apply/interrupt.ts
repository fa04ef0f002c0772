import { rm } from 'node:fs/promises';
import { exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { backupOfRun, ledgerOfRun, mergeApplyState, upsertLedger } from '../../database/sql/apply.js';
import { invalidIndexes } from '../../database/sql/apply-target.js';
import { etlControlExists, readEtlControl } from '../../database/sql/etl-control.js';
import { insertReport } from '../../database/sql/reports.js';
import type { RunRow } from '../../database/sql/runs.js';
import { dropLease } from '../../database/sql/scheduler.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import type { ApplyReport } from './apply-report.js';
import type { ApplyState } from './apply-state.js';
import { LEGACY_APPLY_APPLICATIONS, stopOrphans } from './orphans.js';
import type { Reconciliation } from './reconcile-types.js';

export type ReconcileRun = RunRow & { apply_state?: ApplyState; lease_owner?: string | null; lease_expires_at?: Date | null };

/** What an operator can do with an interrupted run, from what landed. */
export function adviceFor(r: Pick<Reconciliation, 'landed' | 'notLanded' | 'landedKnown' | 'target'>, runId: string): string[] {
  if (!r.landedKnown) {
    return [`The target could not be inspected (${r.target.error}); what landed is unknown (the ledger lists ${r.landed.join(', ') || 'none'}). Once it answers, close the run (POST /v1/runs/${runId}/close) if nothing landed, or re-apply or roll back; the close and re-apply check the target again.`];
  }
  if (r.landed.length === 0) {
    return [`None of the run's migrations landed: close the run (POST /v1/runs/${runId}/close) to free the environment. No restore is needed (a restore would discard every write since the backup).`];
  }
  if (r.notLanded.length) {
    return [`Landed: ${r.landed.join(', ')}; not landed: ${r.notLanded.join(', ')}. Re-apply the rest (POST /v1/runs/${runId}/reapply) once the cause is fixed, or roll back what landed (mode "down"). Nothing is re-applied automatically.`];
  }
  return [`All of the run's migrations landed (${r.landed.join(', ')}) but the apply did not finish its verification: re-apply (POST /v1/runs/${runId}/reapply) runs verification and the watch again, or roll back (mode "down").`];
}

/**
 * Looks at the target the way an SRE would after a crash: stops what the dead
 * apply still runs (its child processes, its sessions), then lists which of
 * the run's migrations landed, any INVALID index, and whether ETL workers are
 * still paused.
 */
export async function inspectInterrupted(ctx: ServiceContext, run: ReconcileRun): Promise<Reconciliation> {
  const state = run.apply_state ?? {};
  const r: Reconciliation = {
    at: new Date().toISOString(),
    previousStatus: run.status,
    phase: state.phase ?? null,
    lease: { owner: run.lease_owner ?? null, expiresAt: run.lease_expires_at ? new Date(run.lease_expires_at).toISOString() : null },
    target: { reachable: false, error: null },
    migrations: [], landed: [], notLanded: [], landedKnown: false, ledgerMismatch: [], ledgerRepaired: [], invalidIndexes: [],
    workers: { method: state.workers?.method ?? 'unknown', pausedByRun: state.workersPaused === true, etlControlPaused: null, etlControlReason: null },
    orphanedSessions: [], orphanedProcesses: [], partialBackupRemoved: null, closable: false,
    advice: [],
  };
  const ledger = new Set((await rows<{ name: string }>(ctx.control, ledgerOfRun(run.id))).map((l) => l.name));
  const env = ctx.config.environments[run.environment];
  const orphans = await stopOrphans(ctx, env, run.id, LEGACY_APPLY_APPLICATIONS);
  r.orphanedProcesses = orphans.processes;
  r.orphanedSessions = orphans.sessions;
  r.target = orphans.target;
  let inTarget = new Set<string>();
  if (env && r.target.reachable) {
    try {
      await ctx.targets.withClient(env, async (client) => {
        inTarget = new Set((await readAppliedMigrations(client, env)).map((m) => m.name));
        r.invalidIndexes = await rows<{ index: string; table: string }>(client, invalidIndexes());
        if ((await one<{ exists: boolean }>(client, etlControlExists())).exists) {
          const etl = await maybeOne<{ paused: boolean; reason: string | null }>(client, readEtlControl());
          r.workers.etlControlPaused = etl?.paused ?? null;
          r.workers.etlControlReason = etl?.reason ?? null;
        }
      });
      r.landedKnown = true;
    } catch (err) {
      r.target = { reachable: false, error: (err as Error).message };
    }
  }
  for (const m of run.migrations) {
    const entry = { name: m.name, inTarget: r.landedKnown ? inTarget.has(m.name) : null, inLedger: ledger.has(m.name) };
    r.migrations.push(entry);
    // Unreachable target: the ledger is the only word on what landed, and it is never "none" by default.
    const landed = r.landedKnown ? entry.inTarget === true : entry.inLedger;
    (landed ? r.landed : r.notLanded).push(m.name);
    if (r.landedKnown && entry.inTarget !== entry.inLedger) r.ledgerMismatch.push(m.name);
  }
  r.closable = r.landedKnown && r.landed.length === 0 && ledger.size === 0;
  r.partialBackupRemoved = await removePartialBackup(ctx, run);
  r.advice.push(...adviceFor(r, run.id));
  const killed = r.orphanedProcesses.filter((p) => p.result === 'killed');
  if (killed.length) r.advice.push(`Killed ${killed.length} child process(es) the dead process left running (${killed.map((p) => `${p.command} pid ${p.pid}`).join(', ')}).`);
  const elsewhere = r.orphanedProcesses.filter((p) => p.result === 'other-host' || p.result === 'failed');
  if (elsewhere.length) r.advice.push(`Child process(es) ${elsewhere.map((p) => `${p.command} pid ${p.pid} on ${p.host}: ${p.note}`).join('; ')}.`);
  if (r.orphanedSessions.length) r.advice.push(`Terminated ${r.orphanedSessions.length} session(s) the dead process still had open on the target, so nothing of it lands later.`);
  if (r.partialBackupRemoved) r.advice.push(`Removed ${r.partialBackupRemoved}, a dump pg_dump had not finished: it is no backup.`);
  if (r.landedKnown) r.ledgerRepaired = r.migrations.filter((m) => m.inTarget && !m.inLedger).map((m) => m.name);
  if (r.ledgerRepaired.length) r.advice.push(`${r.ledgerRepaired.join(', ')} landed before the process died but had no ledger entry yet; the ledger now records the approved checksum.`);
  const stray = r.ledgerMismatch.filter((n) => !r.ledgerRepaired.includes(n));
  if (stray.length) r.advice.push(`The ledger lists ${stray.join(', ')} but the target's migrations table does not: check the target by hand.`);
  if (r.invalidIndexes.length) r.advice.push(`INVALID index(es) remain: ${r.invalidIndexes.map((i) => `${i.index} on ${i.table}`).join(', ')}; drop them (DROP INDEX CONCURRENTLY) before re-applying.`);
  if (r.workers.etlControlPaused || r.workers.pausedByRun) r.advice.push('ETL workers are still paused: closing the run resumes what it paused; otherwise resume them once the target is safe.');
  return r;
}

/** A dump file the dead pg_dump left half-written (no backup row names it). */
export async function removePartialBackup(ctx: ServiceContext, run: ReconcileRun): Promise<string | null> {
  const file = run.apply_state?.pendingBackupFile;
  if (!file) return null;
  const backup = await maybeOne<{ location: string | null }>(ctx.control, backupOfRun(run.id));
  if (backup?.location === file) return null;
  try {
    await rm(file);
    return file;
  } catch {
    return null;
  }
}

const IN_APPLY: RunStatus[] = ['applying', 'verifying'];

/** Records the reconciliation in the run's report and marks it interrupted (one transaction with its events). */
export async function markInterrupted(ctx: ServiceContext, run: ReconcileRun, reconciliation: Reconciliation): Promise<boolean> {
  const now = new Date().toISOString();
  const report: ApplyReport = {
    runId: run.id, environment: run.environment, outcome: 'interrupted', actor: 'system', startedAt: run.updated_at.toISOString(), finishedAt: now,
    backup: null, workers: null, migrations: [], lockRetries: 0,
    failure: { phase: 'interrupted', code: 'interrupted', message: `The process applying this run stopped while it was ${run.status}${reconciliation.phase ? ` (${reconciliation.phase})` : ''}.` },
    verification: [], smoke: null, watch: null, notes: reconciliation.advice, reconciliation,
  };
  return transaction(ctx.control, async (client) => {
    const locked = await lockRunForUpdate(client, run.id);
    if (!IN_APPLY.includes(locked.status)) return false;
    await exec(client, insertReport(run.id, 'apply', run.digest, report));
    // What rollback (down) reverts and a re-apply skips: exactly what is on the target now.
    if (reconciliation.landedKnown) await exec(client, mergeApplyState(run.id, { applied: reconciliation.landed, pendingBackupFile: null }));
    for (const name of reconciliation.ledgerRepaired) {
      const m = run.migrations.find((x) => x.name === name)!;
      await exec(client, upsertLedger(run.environment, m.name, m.sha256, run.id));
    }
    if (reconciliation.ledgerRepaired.length) {
      await appendEvent(client, { runId: run.id, environment: run.environment, type: 'ledger.reconciled', actor: 'system', details: { landed: reconciliation.ledgerRepaired } });
    }
    await transition(client, locked, 'interrupted', {
      actor: 'system',
      details: {
        reason: 'the process running this apply stopped; see the reconciliation in the report',
        phase: reconciliation.phase, landed: reconciliation.landed, notLanded: reconciliation.notLanded, landedKnown: reconciliation.landedKnown,
        closable: reconciliation.closable, invalidIndexes: reconciliation.invalidIndexes.map((i) => i.index),
        workersPaused: reconciliation.workers.etlControlPaused ?? reconciliation.workers.pausedByRun, terminatedSessions: reconciliation.orphanedSessions.length,
        killedProcesses: reconciliation.orphanedProcesses.filter((p) => p.result === 'killed').length, lease: reconciliation.lease,
      },
      patch: { error: { code: 'interrupted', message: `The service stopped while this run was being applied (${run.status}${reconciliation.phase ? `, ${reconciliation.phase}` : ''}); landed: ${reconciliation.landedKnown ? reconciliation.landed.join(', ') || 'none' : `unknown (target unreachable; the ledger lists ${reconciliation.landed.join(', ') || 'none'})`}. See the report.` } },
    });
    if (run.lease_owner) await exec(client, dropLease(run.id, run.lease_owner));
    return true;
  });
}

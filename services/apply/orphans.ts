import { setTimeout as sleep } from 'node:timers/promises';
import { exec, one, rows } from '../../database/db.js';
import { endProcess, openProcessesOfRun, runSessions, type ProcessRow } from '../../database/sql/recovery.js';
import { backendAlive, terminateBackend } from '../../database/sql/scheduler.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { killRecorded, processStartTicks, type KillOutcome } from '../child-processes.js';
import type { ServiceContext } from '../context.js';
import type { Orphans, OrphanSession } from './reconcile-types.js';

// Session names of an older version of the service (not per run): a run
// started before an upgrade left sessions under these.
export const LEGACY_APPLY_APPLICATIONS = ['starforge-apply', 'starforge-pause'];

/** Kills what is left of the run's recorded child processes on this host; records each as ended. */
export async function stopProcesses(ctx: ServiceContext, runId: string): Promise<KillOutcome[]> {
  const open = await rows<ProcessRow>(ctx.control, openProcessesOfRun(runId));
  const outcomes: KillOutcome[] = [];
  for (const row of open) {
    const outcome = killRecorded(row);
    outcomes.push(outcome);
    if (outcome.result === 'killed') {
      // SIGKILL is not instantaneous: the group is gone once the leader is.
      for (let i = 0; i < 50 && processStartTicks(row.pid) !== null; i++) await sleep(100);
    }
    if (outcome.result !== 'failed') await exec(ctx.control, endProcess(row.id, `reconciled: ${outcome.note}`));
  }
  return outcomes;
}

/**
 * Terminates every session the run still has on its target and waits until
 * they are gone: a terminated backend rolls its transaction back as it exits,
 * and whatever the target shows afterwards is final.
 */
export async function terminateRunSessions(ctx: ServiceContext, env: EnvironmentConfig, runId: string, legacyNames: readonly string[] = []): Promise<OrphanSession[]> {
  return ctx.targets.withClient(env, async (client) => {
    const sessions: OrphanSession[] = [];
    for (const s of await rows<{ pid: number; application_name: string | null; state: string | null; query: string; running_for: string | null }>(client, runSessions(runId, legacyNames))) {
      const { terminated } = await one<{ terminated: boolean }>(client, terminateBackend(s.pid));
      sessions.push({ pid: s.pid, applicationName: s.application_name, state: s.state, query: s.query, runningFor: s.running_for, terminated });
    }
    for (let i = 0; i < 100 && sessions.length; i++) {
      const alive = await Promise.all(sessions.map((s) => one<{ n: number }>(client, backendAlive(s.pid))));
      if (alive.every((a) => a.n === 0)) break;
      await sleep(100);
    }
    return sessions;
  });
}

/** Stops everything a dead run left running: its child processes, then its target sessions. */
export async function stopOrphans(ctx: ServiceContext, env: EnvironmentConfig | undefined, runId: string, legacyNames: readonly string[] = []): Promise<Orphans> {
  const orphans: Orphans = { target: { reachable: false, error: null }, processes: [], sessions: [] };
  orphans.processes = await stopProcesses(ctx, runId);
  if (!env) {
    orphans.target.error = 'the environment is no longer configured';
    return orphans;
  }
  try {
    orphans.sessions = await terminateRunSessions(ctx, env, runId, legacyNames);
    orphans.target.reachable = true;
  } catch (err) {
    orphans.target.error = (err as Error).message;
  }
  return orphans;
}

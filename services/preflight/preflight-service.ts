import { exec, maybeOne, rows, transaction } from '../../database/db.js';
import { describeConnectionError, isConnectionError, isPgError, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import { acknowledgementsOf, type AcknowledgementRow } from '../../database/sql/acknowledgements.js';
import { PREFLIGHT_LOCK_CLASS } from '../../database/sql/locks.js';
import { insertReport } from '../../database/sql/reports.js';
import { runsInStatus, selectRun, type RunRow } from '../../database/sql/runs.js';
import { reinstateStandingApprovals } from '../approvals/standing.js';
import { createBackground, withRunLock } from '../background.js';
import type { ServiceContext } from '../context.js';
import { forbidden, notFound } from '../errors.js';
import { hasRole, sameSubject, type Principal } from '../principal.js';
import { activeRunConflict } from '../runs/active-conflict.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { slots } from '../slots.js';
import { applyApiAcks, servedReport } from './api-acks.js';
import { buildPreflightReport } from './build-report.js';
import { ownerTag, sweepOrphanedRehearsals } from './ephemeral.js';
import { sweepOrphanedGlobals } from './rehearsal/globals-sweep.js';
import type { PreflightReport } from './report.js';

// Retries after a lost connection back off from 2 s to at most a minute.
const RETRY_BASE_MS = 2000;
const RETRY_MAX_MS = 60_000;

// Preflights one process runs at once; the others wait their turn (still preflight_running). Each holds its run
// lock's control connection for its whole length and needs one or two more while it runs: ten at once on the
// control pool's ten connections held every one as a lock, and each timed out waiting for a query's. A rehearsal
// also takes a copy, sessions and CPU of its own.
const PREFLIGHTS_AT_ONCE = 3;

/**
 * Runs preflight for a run in the background. Whoever holds the run's
 * advisory lock does the work, so several replicas (or a restart) never run
 * one preflight twice, and a preflight orphaned by a dead process is resumed.
 */
export function createPreflightService(ctx: ServiceContext) {
  const { control, config, log } = ctx;
  const background = createBackground(log);
  const preflightSlot = slots(PREFLIGHTS_AT_ONCE);

  async function execute(runId: string): Promise<void> {
    // Another replica holding the run's lock is on it: nothing to do here.
    await withRunLock(control, PREFLIGHT_LOCK_CLASS, runId, async () => {
      const run = await maybeOne<RunRow>(control, selectRun(runId));
      if (!run || run.status !== 'preflight_running') return;
      const endPreflight = ctx.metrics.phaseTimer(run.environment, 'preflight');
      const built = await buildPreflightReport(ctx, run);
      endPreflight();
      const { set } = built;
      await transaction(control, async (client) => {
        const current = await lockRunForUpdate(client, runId);
        // Acknowledgements given for this digest carry over (same finding ids); read under the run's lock, which an ack takes too.
        const report = applyApiAcks(built.report, await rows<AcknowledgementRow>(client, acknowledgementsOf(runId, built.report.digest ?? undefined)));
        const failed = report.outcome === 'failed';
        const findings = report.findings;
        await exec(client, insertReport(runId, 'preflight', report.digest, report));
        if (current.status !== 'preflight_running') return; // cancelled meanwhile: keep the report, change nothing else
        const firstError = findings.find((f) => f.severity === 'error');
        const estimatedMs = report.impact?.totalEstimatedMs;
        await transition(client, current, failed ? 'preflight_failed' : 'awaiting_approval', {
          actor: 'system',
          type: failed ? 'preflight.failed' : 'preflight.passed',
          details: { findings: findings.length, errors: findings.filter((f) => f.severity === 'error').length, digest: report.digest, estimatedMs: estimatedMs ?? null },
          patch: {
            ...(set && set.pending.length ? { migrations: report.migrations, digest: set.digest } : {}),
            error: firstError ? { code: firstError.rule, message: firstError.message } : null,
          },
        });
        if (failed) return;
        await reinstateStandingApprovals(client, config.environments[current.environment], current, report.digest ?? current.digest);
      });
      // The report is served from here on; the job (and idle()) ends once the copy is gone.
      await built.copyDropped;
    });
  }

  // What a dead preflight left on the rehearsal server: its copies, then the
  // server-wide objects its migrations created (a role may own things in a copy).
  async function sweep(): Promise<void> {
    const sweepCtx = { serverUrl: config.preflightDatabaseUrl ?? config.databaseUrl!, owner: ownerTag(config.databaseUrl!), control, log };
    await sweepOrphanedRehearsals(sweepCtx.serverUrl, sweepCtx.owner, control, log);
    await sweepOrphanedGlobals(sweepCtx);
  }

  // A preflight cut short by the control database going away (its lock
  // connection died with it) is retried until the database answers again, so
  // the run does not stay preflight_running until the next process start. The
  // retry first drops the rehearsal database the cut attempt could not.
  const retries = new Set<NodeJS.Timeout>();
  function launch(runId: string, attempt = 0): void {
    background.launch('preflight', { runId }, async () => {
      try {
        await preflightSlot(async () => {
          if (attempt > 0) await sweep();
          await execute(runId);
        });
      } catch (err) {
        if (!isConnectionError(err) || background.isClosed()) throw err;
        const delay = Math.min(RETRY_BASE_MS * 2 ** attempt, RETRY_MAX_MS);
        log.warn({ runId, attempt: attempt + 1, retryInMs: delay, reason: describeConnectionError(err) }, 'preflight lost its database connection; retrying');
        const timer = setTimeout(() => {
          retries.delete(timer);
          launch(runId, attempt + 1);
        }, delay);
        retries.add(timer);
      }
    });
  }

  async function close(): Promise<void> {
    for (const timer of retries) clearTimeout(timer);
    retries.clear();
    await background.close();
  }

  /**
   * Moves the run to preflight_running (audited) and starts the work in the
   * background. Tracked from the start, so idle() also waits for a preflight
   * that is still being requested (the one a new run starts).
   */
  function request(runId: string, principal: Principal | 'system'): Promise<void> {
    return background.track(start(runId, principal));
  }

  async function start(runId: string, principal: Principal | 'system'): Promise<void> {
    const actor = principal === 'system' ? 'system' : principal.subject;
    let environment: string | undefined;
    try {
      await transaction(control, async (client) => {
        const run = await lockRunForUpdate(client, runId);
        environment = run.environment;
        if (principal !== 'system' && !hasRole(principal, 'operator') && !sameSubject(run.requested_by, principal.subject)) {
          throw forbidden(`Only the requester (${run.requested_by}) or an operator may re-run preflight for run ${runId}.`);
        }
        await transition(client, run, 'preflight_running', { actor, type: 'preflight.started' });
      });
    } catch (err) {
      // A preflight_failed run holds no environment; re-running it would take the
      // environment back, which the partial unique index refuses while another run is active.
      if (isPgError(err, UNIQUE_VIOLATION) && err.constraint === 'runs_one_active_per_environment' && environment) {
        throw await activeRunConflict(control, environment, `finish or cancel it before re-running preflight for run ${runId}.`);
      }
      throw err;
    }
    launch(runId);
  }

  /**
   * After a crash: drops rehearsal databases nobody owns any more and what
   * their migrations created server-wide, then resumes preflights left
   * running by a dead process (those whose lock nobody holds).
   */
  async function resumeOrphans(): Promise<void> {
    await sweep();
    const orphans = await rows<{ id: string }>(control, runsInStatus('preflight_running'));
    for (const { id } of orphans) launch(id);
  }

  /** The latest report as stored, with the acknowledgements given since for its digest applied. */
  async function report(runId: string): Promise<{ report: PreflightReport; createdAt: string }> {
    const found = await servedReport(control, runId);
    if (!found) throw notFound(`Run ${runId} has no preflight report yet.`);
    return found;
  }

  return { request, launch, resumeOrphans, report, idle: background.idle, close };
}

export type PreflightService = ReturnType<typeof createPreflightService>;

import { exec, maybeOne, one, transaction } from '../../database/db.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import { readEtlControl, setEtlPaused } from '../../database/sql/etl-control.js';
import { etlTablesExist, lockEtlControl, setLocalTimeouts } from '../../database/sql/metrics.js';
import { activeRunFor } from '../../database/sql/runs.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { conflict, unavailable } from '../errors.js';
import { sameSubject, type Principal } from '../principal.js';
import { environmentOf, targetTimeout } from './health.js';

// Runs in these statuses have paused the workers themselves and resume them
// when done: an operator resuming in the middle would let the ETL write while
// the schema changes or a backup is restored.
const HOLDS_WORKERS = ['applying', 'verifying', 'rolling_back', 'restoring'];
const STATEMENT_TIMEOUT_MS = 5000;
const LOCK_TIMEOUT_MS = 2000;

export interface EtlControlState {
  environment: string;
  paused: boolean;
  pausedBy: string | null;
  pauseReason: string | null;
  changedAt: string;
  /** false when the flag already had the asked-for value (nothing changed, nothing audited). */
  changed: boolean;
}

interface ControlRow {
  paused: boolean;
  reason: string | null;
  changed_by: string | null;
  changed_at: Date;
}

/**
 * POST /v1/etl/pause and /resume: sets etl_control.paused on the target, the
 * flag the ETL workers read before every batch, with an audit event in the
 * control database. The flag and the audit live in two databases, so the
 * flag's transaction stays open until the audit event has committed: when
 * the audit cannot be written the flag change is rolled back and never seen
 * by a worker.
 */
export function createEtlControlService(ctx: ServiceContext) {
  const { control, log } = ctx;

  async function change(environment: string, principal: Principal, reason: string, paused: boolean): Promise<EtlControlState> {
    const env = environmentOf(ctx, environment);
    if (!paused) {
      const busy = await maybeOne<{ id: string; status: string }>(control, activeRunFor(env.name, HOLDS_WORKERS));
      if (busy) {
        throw conflict(`Run ${busy.id} is ${busy.status} on ${env.name} and resumes the ETL workers itself when it is done; resuming them now would let the ETL write during the change.`, { activeRunId: busy.id });
      }
    }
    const type = paused ? 'etl.paused' : 'etl.resumed';
    const state = (row: ControlRow, changed: boolean): EtlControlState => ({
      environment: env.name,
      paused: row.paused,
      pausedBy: row.paused ? row.changed_by : null,
      pauseReason: row.paused ? row.reason : null,
      changedAt: row.changed_at.toISOString(),
      changed,
    });

    return ctx.targets.withClient(env, async (client) => {
      let open = true;
      const rollback = async () => {
        if (!open) return;
        open = false;
        await client.query('ROLLBACK').catch(() => undefined);
      };
      await client.query('BEGIN');
      try {
        await exec(client, setLocalTimeouts(STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS));
        const exists = await one<{ control: boolean }>(client, etlTablesExist());
        if (!exists.control) throw conflict(`The ${env.name} database has no etl_control table yet: apply the StarForge migrations first.`);
        const before = await maybeOne<ControlRow>(client, lockEtlControl());
        if (!before) throw conflict(`etl_control on ${env.name} has no row, so workers cannot see a flag; the StarForge migration inserts it.`);
        // Someone else pausing an already paused ETL (an operator while an apply
        // holds it) records who wants it paused and why: it is then no longer the
        // apply's pause to lift. The same subject pausing again changes nothing.
        if (before.paused === paused && (!paused || (before.changed_by !== null && sameSubject(before.changed_by, principal.subject)))) {
          await rollback();
          return state(before, false);
        }
        await exec(client, setEtlPaused(paused, reason, principal.subject));
        const after = await one<ControlRow>(client, readEtlControl());
        try {
          await transaction(control, (c) => appendEvent(c, { runId: null, environment: env.name, type, actor: principal.subject, details: { reason } }));
        } catch (err) {
          await rollback();
          log.error({ err, environment: env.name, type }, 'audit event not written: ETL flag change rolled back');
          throw unavailable(`The audit event could not be written, so the ETL flag on ${env.name} was left as it was (${before.paused ? 'paused' : 'running'}); retry shortly.`);
        }
        try {
          await client.query('COMMIT');
          open = false;
        } catch (err) {
          open = false;
          // The audit says it changed, the target says it did not: say so in the trail too.
          await transaction(control, (c) => appendEvent(c, {
            runId: null, environment: env.name, type: `${type}.reverted`, actor: 'system', details: { reason: 'the target did not commit the flag change' },
          })).catch((auditErr) => log.error({ err: auditErr, environment: env.name }, 'could not record the reverted ETL flag change'));
          throw unavailable(`The ${env.name} database did not commit the ETL flag change (${describeConnectionError(err)}); nothing changed, retry shortly.`);
        }
        return state(after, true);
      } catch (err) {
        await rollback();
        throw targetTimeout(err, env);
      }
    });
  }

  return {
    pause: (environment: string, principal: Principal, reason: string) => change(environment, principal, reason, true),
    resume: (environment: string, principal: Principal, reason: string) => change(environment, principal, reason, false),
  };
}

export type EtlControlService = ReturnType<typeof createEtlControlService>;

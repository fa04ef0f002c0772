import type pg from 'pg';
import { exec, one, rows, transaction, withDatabase } from '../../../database/db.js';
import { scrubSecrets } from '../../../database/pg-errors.js';
import { serverGlobals, type GlobalRow } from '../../../database/sql/cluster-globals.js';
import { PREFLIGHT_LOCK_CLASS, tryRunXactLock } from '../../../database/sql/locks.js';
import { LINT_DB_PREFIX, REHEARSAL_DB_PREFIX } from '../../../database/sql/preflight.js';
import {
  claimAttempt, databasesStartingWith, deleteAttempt, recordedAttempts, SWEPT_EVENT, type ClaimedGlobalRow,
} from '../../../database/sql/rehearsal-globals.js';
import { appendEvent } from '../../audit.js';
import type { Logger } from '../../logger.js';
import { runCopyPrefix, withServer } from '../ephemeral.js';
import { dropServerObject, dropSubscriptionIn, leftMessage } from './drop-global.js';
import { serverKeyOf } from './server-identity.js';

// After a rehearsal died (kill -9, OOM, a crash), what its ledger
// (globals-ledger.ts) recorded is still in the control database and the
// objects may still be on the rehearsal server. The sweep drops those that
// are there now: a row exists only for an object absent at the attempt's
// baseline that its sealed files CREATE, or that a step was seen creating.
// Nothing else on the server is looked at, so what other sessions made or
// what was there before stays.
//
// Who may sweep is decided in SQL, as for the throw-away copies
// (ephemeral.ts): the run's preflight advisory lock, taken for the sweeping
// transaction, is free only when no live process rehearses the run; a second
// sweep at the same time finds it taken (or, after, the rows gone).

export interface SweepContext {
  control: pg.Pool;
  /** The rehearsal server: PREFLIGHT_DATABASE_URL, else the control database's. */
  serverUrl: string;
  /** ownerTag() of the control database: names the run's throw-away copies. */
  owner: string;
  log: Logger;
  /** A copy of the run's that the live attempt sweeping its dead ones is using (created before its guard opened): not theirs. */
  keepCopy?: string;
}

export interface SweptObject {
  kind: ClaimedGlobalRow['kind'];
  name: string;
  /** The sealed file that creates it (origin source) or the migration seen creating it (step). */
  migration: string | null;
  origin: ClaimedGlobalRow['origin'];
  cleanup: string;
}

export interface SweptAttempt {
  runId: string;
  attempt: string;
  /** The attempt's throw-away copies still there, dropped first. */
  copies: string[];
  dropped: SweptObject[];
  left: SweptObject[];
}

interface Attempt {
  attempt_id: string;
  run_id: string;
}

const keyOf = (r: { kind: string; name: string }) => `${r.kind} ${r.name}`;

/** Every recorded attempt whose run no live preflight holds. Called at start and before a retry, after the copies are swept. */
export async function sweepOrphanedGlobals(ctx: SweepContext): Promise<SweptAttempt[]> {
  const attempts = await rows<Attempt>(ctx.control, recordedAttempts());
  if (attempts.length === 0) return [];
  return withServer(ctx.serverUrl, (server) => sweepAttempts(ctx, server, attempts, false));
}

/**
 * Attempts of one run, by its live preflight, which holds the run's lock:
 * `which` 'earlier' before its baseline (they are dead, and what they left
 * must be gone before the baseline, or it would count as the server's);
 * 'this' when its own rehearsal ended without cleanup (a failure before the
 * copy was seeded, or a copy that could not be dropped).
 */
export async function sweepRunAttempts(ctx: SweepContext, server: pg.ClientBase, runId: string, current: string, which: 'earlier' | 'this'): Promise<SweptAttempt[]> {
  const attempts = (await rows<Attempt>(ctx.control, recordedAttempts(runId))).filter((a) => (a.attempt_id === current) === (which === 'this'));
  return sweepAttempts(ctx, server, attempts, true);
}

async function sweepAttempts(ctx: SweepContext, server: pg.ClientBase, attempts: Attempt[], lockHeld: boolean): Promise<SweptAttempt[]> {
  if (attempts.length === 0) return [];
  const serverKey = await serverKeyOf(server);
  const swept: SweptAttempt[] = [];
  for (const a of attempts) {
    try {
      const done = await sweepAttempt(ctx, server, serverKey, a, lockHeld);
      if (done) swept.push(done);
    } catch (err) {
      // Its rows stay (the transaction rolled back): the next sweep tries again.
      ctx.log.warn({ runId: a.run_id, attempt: a.attempt_id, reason: scrubSecrets((err as Error).message, [ctx.serverUrl]) }, 'could not sweep what a dead rehearsal left on its server');
    }
  }
  return swept;
}

async function sweepAttempt(ctx: SweepContext, server: pg.ClientBase, serverKey: string, a: Attempt, lockHeld: boolean): Promise<SweptAttempt | null> {
  const result = await transaction(ctx.control, async (tx) => {
    if (!lockHeld && !(await one<{ locked: boolean }>(tx, tryRunXactLock(PREFLIGHT_LOCK_CLASS, a.run_id))).locked) return null;
    const records = await rows<ClaimedGlobalRow>(tx, claimAttempt(a.attempt_id));
    if (records.length === 0) return null;
    if (records.some((r) => r.server_key !== serverKey)) {
      // The baseline was another server's (PREFLIGHT_DATABASE_URL changed since): nothing here is known to be the rehearsal's.
      ctx.log.warn({ runId: a.run_id, attempt: a.attempt_id }, 'a dead rehearsal recorded objects on another server than the rehearsal server now configured; left alone');
      return null;
    }
    const swept = await dropLeftovers(ctx, server, a, records);
    await exec(tx, deleteAttempt(a.attempt_id));
    if (swept.copies.length || swept.dropped.length || swept.left.length) {
      await appendEvent(tx, {
        runId: a.run_id, environment: records[0]!.environment, type: SWEPT_EVENT, actor: 'system',
        details: { attempt: a.attempt_id, copies: swept.copies, dropped: swept.dropped, left: swept.left },
      });
    }
    return swept;
  });
  if (result && (result.dropped.length || result.left.length)) {
    const said = (list: SweptObject[]) => list.map((o) => `${o.kind} ${o.name}`);
    ctx.log.info({ runId: a.run_id, attempt: a.attempt_id, dropped: said(result.dropped), left: said(result.left) }, 'dropped server-wide objects a dead rehearsal had created');
  }
  return result;
}

/**
 * What of `records` is on the server now, dropped in the guard's cleanup
 * order: subscriptions (from their own database: one keeps its database from
 * being dropped), the run's copies (objects in them may be its roles'),
 * databases, tablespaces, roles. An object only the files name (never seen
 * created: the process died first) is dropped plainly: a role that holds
 * anything anywhere, a database someone is connected to, is somebody's and
 * stays. One a step was seen creating is the rehearsal's for certain and
 * dropped as the cleanup would (FORCE, DROP OWNED).
 */
async function dropLeftovers(ctx: SweepContext, server: pg.ClientBase, a: Attempt, records: ClaimedGlobalRow[]): Promise<SweptAttempt> {
  const now = new Map((await rows<GlobalRow>(server, serverGlobals([REHEARSAL_DB_PREFIX, LINT_DB_PREFIX]))).map((r) => [keyOf(r), r]));
  const out: SweptAttempt = { runId: a.run_id, attempt: a.attempt_id, copies: [], dropped: [], left: [] };
  const settle = async (r: ClaimedGlobalRow, drop: () => Promise<string>) => {
    const object = { kind: r.kind, name: r.name, migration: r.migration, origin: r.origin };
    try {
      out.dropped.push({ ...object, cleanup: await drop() });
    } catch (err) {
      out.left.push({ ...object, cleanup: scrubSecrets(leftMessage(err), [ctx.serverUrl]) });
    }
  };
  const present = (kind: ClaimedGlobalRow['kind']) => records.filter((r) => r.kind === kind && now.has(keyOf(r)));

  for (const r of present('subscription')) {
    const database = now.get(keyOf(r))!.definition;
    await settle(r, () => withServer(withDatabase(ctx.serverUrl, database), (db) => dropSubscriptionIn(db, r.name)));
  }
  for (const { datname } of await rows<{ datname: string }>(server, databasesStartingWith(runCopyPrefix(ctx.owner, a.run_id)))) {
    if (datname === ctx.keepCopy) continue;
    await dropServerObject(server, 'database', datname);
    out.copies.push(datname);
  }
  for (const kind of ['database', 'tablespace', 'role'] as const) {
    for (const r of present(kind)) await settle(r, () => dropServerObject(server, kind, r.name, r.origin === 'step' ? 'as-cleanup' : 'plainly'));
  }
  return out;
}

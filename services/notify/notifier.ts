import { exec, one, rows, transaction } from '../../database/db.js';
import {
  claimDueDeliveries,
  claimOutbox,
  deleteOutbox,
  insertDelivery,
  markDelivered,
  markFailed,
  markRetry,
  tryExpandLock,
  type DeliveryRow,
  type OutboxRow,
} from '../../database/sql/notifications.js';
import { describeConnectionError, isConnectionError } from '../../database/pg-errors.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { announce, bodyFor } from './messages.js';

export const NOTIFIER_ACTOR = 'notifier';
const OUTBOX_BATCH = 100;
const DELIVERY_BATCH = 20;
const MAX_RETRY_DELAY_MS = 5 * 60_000;

export interface PostOutcome {
  ok: boolean;
  /** HTTP status when the target answered. */
  status: number | null;
  /** Why it failed, safe to record: never the URL, which is the secret. */
  error: string | null;
  /** A 429/503's Retry-After, in ms. */
  retryAfterMs: number | null;
}

/** POSTs a JSON body; whatever happens, the answer never carries the URL. */
export async function postJson(url: string, body: unknown, timeoutMs: number): Promise<PostOutcome> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'starforge-migration-service' },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel().catch(() => undefined);
    const retryAfter = Number(res.headers.get('retry-after'));
    return {
      ok: res.ok,
      status: res.status,
      error: res.ok ? null : `HTTP ${res.status}`,
      retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, MAX_RETRY_DELAY_MS) : null,
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: unknown } };
    const reason = e.name === 'TimeoutError' || e.name === 'AbortError'
      ? `no answer within ${timeoutMs} ms`
      : typeof e.cause?.code === 'string' ? `connection failed (${e.cause.code})` : 'request failed';
    return { ok: false, status: null, error: reason, retryAfterMs: null };
  }
}

/** Exponential backoff with ±20% jitter, so retries from several replicas spread out. */
export function retryDelayMs(baseMs: number, attempt: number, random = Math.random): number {
  const raw = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_RETRY_DELAY_MS);
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/**
 * Announces run transitions to each environment's webhooks. Events reach the
 * outbox by trigger in the transaction that made the change; this loop turns
 * them into deliveries and delivers them, each attempt recorded in the run's
 * events. It runs beside the runs, never in their way: a webhook that fails
 * or hangs costs only its own retries.
 */
export function createNotifier(ctx: ServiceContext) {
  const { control, config, log, metrics } = ctx;
  const settings = config.notifier;
  const leaseMs = settings.timeoutMs * 2 + 5_000;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let stopped = true;
  let warnedDown = false;

  /** Turns queued events into one delivery per target that listens for the new status. */
  async function expand(): Promise<number> {
    return transaction(control, async (client) => {
      // Another replica is expanding: its deliveries first, ours at the next poll.
      if (!(await one<{ locked: boolean }>(client, tryExpandLock())).locked) return 0;
      const queued = await rows<OutboxRow>(client, claimOutbox(OUTBOX_BATCH));
      for (const row of queued) {
        const targets = config.environments[row.environment]?.notify ?? [];
        const listening = targets.filter((t) => (t.events as string[]).includes(row.to_status));
        if (!listening.length) continue;
        let announcement;
        try {
          announcement = announce(row);
        } catch (err) {
          // One event that cannot be worded must not hold up every later one.
          log.error({ err, runId: row.run_id, eventId: row.event_id }, 'could not word a run notification; skipped');
          continue;
        }
        for (const target of listening) {
          await exec(client, insertDelivery({
            eventId: row.event_id,
            runId: row.run_id,
            environment: row.environment,
            target: `${target.kind}:${target.urlEnv}`,
            kind: target.kind,
            urlEnv: target.urlEnv,
            payload: bodyFor(target.kind, announcement),
          }));
        }
      }
      if (queued.length) await exec(client, deleteOutbox(queued.map((r) => r.event_id)));
      return queued.length;
    });
  }

  async function deliver(d: DeliveryRow): Promise<void> {
    const url = config.notifyUrls[d.url_env];
    const outcome: PostOutcome = url
      ? await postJson(url, d.payload, settings.timeoutMs)
      : { ok: false, status: null, error: `${d.url_env} is no longer configured`, retryAfterMs: null };
    const base = { target: d.target, deliveryId: Number(d.id), notifies: d.event_type, attempt: d.attempts, httpStatus: outcome.status };
    const giveUp = !outcome.ok && (d.attempts >= settings.maxAttempts || !url);
    const delay = outcome.ok || giveUp ? 0 : Math.max(retryDelayMs(settings.retryBaseMs, d.attempts), outcome.retryAfterMs ?? 0);
    const event = outcome.ok
      ? { type: 'notification.delivered', details: base }
      : giveUp
        ? { type: 'notification.failed', details: { ...base, error: outcome.error, attempts: d.attempts } }
        : { type: 'notification.retrying', details: { ...base, error: outcome.error, retryInMs: delay } };
    const settled = await transaction(control, async (client) => {
      const changed = await exec(client, outcome.ok
        ? markDelivered(d.id, d.attempts)
        : giveUp ? markFailed(d.id, d.attempts, outcome.error ?? 'failed') : markRetry(d.id, d.attempts, delay, outcome.error ?? 'failed'));
      // Our lease lapsed and another replica took the delivery over: it records the outcome, not us.
      if (!changed) return false;
      await appendEvent(client, { runId: d.run_id, environment: d.environment, type: event.type, actor: NOTIFIER_ACTOR, details: event.details });
      return true;
    });
    if (!settled) return;
    metrics.notifications.inc({ environment: d.environment, kind: d.kind, outcome: outcome.ok ? 'delivered' : giveUp ? 'failed' : 'retrying' });
    if (!outcome.ok) log.warn({ target: d.target, runId: d.run_id, attempt: d.attempts, error: outcome.error, giveUp }, 'webhook delivery failed');
  }

  /** One pass: expand new events, then deliver everything due (several batches if need be). */
  async function tick(): Promise<void> {
    while ((await expand()) === OUTBOX_BATCH && !stopped);
    for (;;) {
      const due = await rows<DeliveryRow>(control, claimDueDeliveries(DELIVERY_BATCH, leaseMs));
      await Promise.all(due.map((d) => deliver(d).catch((err) => log.error({ err, deliveryId: d.id }, 'could not record a webhook delivery'))));
      if (due.length < DELIVERY_BATCH || stopped) break;
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      current = tick().then(
        () => { warnedDown = false; },
        (err) => {
          if (!isConnectionError(err)) {
            log.error({ err }, 'notifier pass failed; retrying at the next poll');
            return;
          }
          // The control database is down or restarting: try again next poll, warn once.
          if (!warnedDown) log.warn({ reason: describeConnectionError(err) }, 'notifier could not reach the control database');
          warnedDown = true;
        },
      ).finally(() => {
        current = undefined;
        schedule();
      });
    }, settings.pollMs);
    timer.unref();
  }

  return {
    /** Runs one pass now (tests and benches; the loop calls it every NOTIFY_POLL_MS). */
    tick,
    start(): void {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}

export type Notifier = ReturnType<typeof createNotifier>;

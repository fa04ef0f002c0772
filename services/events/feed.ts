import type pg from 'pg';
import { one, rows } from '../../database/db.js';
import { eventsAfter, lastEventBefore, oldestWriterStart, replayPage } from '../../database/sql/event-feed.js';
import type { EventRow } from '../../database/sql/events.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import { presentEvent, type AuditEvent } from '../audit.js';
import { unavailable } from '../errors.js';
import type { Logger } from '../logger.js';

export interface EventFilter {
  environment?: string;
  runId?: string;
}

export interface Subscription {
  /** Every event with an id up to here was committed before the subscription; later ones arrive live. */
  watermark: number;
  unsubscribe(): void;
}

export interface EventFeedOptions {
  control: pg.Pool;
  log: Logger;
  pollMs: number;
  /** How long a missing id may hold the feed back before it is given up (default 30 s). */
  gapMaxMs?: number;
}

const PAGE = 500;

export function matches(filter: EventFilter, event: AuditEvent): boolean {
  return (filter.environment === undefined || event.environment === filter.environment)
    && (filter.runId === undefined || event.runId === filter.runId);
}

/**
 * One reader of the audit trail per process, shared by every open stream.
 *
 * Replicas share nothing but the control database, so each polls run_events
 * (one query per tick while any stream is open, none otherwise) and sees every
 * replica's events; this also works through a transaction-mode pooler, where
 * LISTEN does not. Events go out strictly in id order: ids are taken at insert
 * but become visible at commit, so a visible id above a missing one holds the
 * feed back until the missing id shows up or can no longer arrive (no
 * transaction that was running when the gap was seen is still running: it was
 * rolled back), at most `gapMaxMs`. Because of that, "everything up to the
 * watermark" is final, which is what makes Last-Event-ID resumption exact.
 */
export function createEventFeed({ control, log, pollMs, gapMaxMs = 30_000 }: EventFeedOptions) {
  const subscribers = new Map<symbol, { filter: EventFilter; push: (event: AuditEvent) => void }>();
  /** For a visible event above a missing id: when (database clock) the ids below it were first seen missing. */
  const gapBelow = new Map<number, Date>();
  let watermark = 0;
  let starting: Promise<void> | null = null;
  let running = false;
  // A stop and a restart while a poll is in flight must not leave two loops ticking.
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | null = null;
  let failing = false;
  let closed = false;

  async function start(): Promise<void> {
    // Start where nothing older can still arrive: before the oldest open writer (bounded by gapMaxMs).
    const { oldest, now } = await one<{ oldest: Date | null; now: Date }>(control, oldestWriterStart());
    const bound = now.getTime() - gapMaxMs;
    const from = oldest === null ? null : new Date(Math.max(oldest.getTime(), bound) - 1000);
    const { id } = await one<{ id: string }>(control, lastEventBefore(from));
    watermark = Number(id);
    gapBelow.clear();
    running = true;
    schedule(++generation);
  }

  function schedule(gen: number): void {
    if (!running || gen !== generation) return;
    // The last stream may have gone while the feed was starting.
    if (subscribers.size === 0) {
      running = false;
      return;
    }
    timer = setTimeout(() => {
      polling = poll().finally(() => {
        polling = null;
        schedule(gen);
      });
    }, pollMs);
  }

  async function gapsSettled(): Promise<(seenAt: Date) => boolean> {
    const { oldest, now } = await one<{ oldest: Date | null; now: Date }>(control, oldestWriterStart());
    return (seenAt) => oldest === null || oldest.getTime() > seenAt.getTime() || now.getTime() - seenAt.getTime() > gapMaxMs;
  }

  function emit(event: AuditEvent): void {
    for (const sub of subscribers.values()) {
      if (matches(sub.filter, event)) sub.push(event);
    }
  }

  /** Emits what is final; returns false when a gap holds the rest back. */
  async function advance(page: Array<EventRow & { seen_at: Date }>): Promise<boolean> {
    let settled: ((seenAt: Date) => boolean) | null = null;
    for (const row of page) {
      const id = Number(row.id);
      if (id > watermark + 1) {
        let seenAt = gapBelow.get(id);
        if (!seenAt) gapBelow.set(id, (seenAt = row.seen_at));
        settled ??= await gapsSettled();
        if (!settled(seenAt)) return false;
        if (row.seen_at.getTime() - seenAt.getTime() > gapMaxMs) {
          log.warn({ fromId: watermark + 1, toId: id - 1 }, 'event stream: gave up waiting for audit event ids held by a transaction open longer than the limit');
        }
      }
      gapBelow.delete(id);
      watermark = id;
      emit(presentEvent(row));
    }
    return true;
  }

  async function poll(): Promise<void> {
    try {
      for (;;) {
        const page = await rows<EventRow & { seen_at: Date }>(control, eventsAfter(watermark, PAGE));
        const done = !(await advance(page)) || page.length < PAGE;
        for (const id of gapBelow.keys()) if (id <= watermark) gapBelow.delete(id);
        if (done) break;
      }
      if (failing) log.info({}, 'event stream: control database answers again');
      failing = false;
    } catch (err) {
      // A control-database outage pauses the feed; the next tick carries on from the watermark.
      if (!failing) log.warn({ reason: describeConnectionError(err) }, 'event stream: cannot read audit events; retrying');
      failing = true;
    }
  }

  async function stop(): Promise<void> {
    running = false;
    clearTimeout(timer);
    await polling;
  }

  /** Registers a live listener; the returned watermark tells the caller what a replay must cover. */
  async function subscribe(filter: EventFilter, push: (event: AuditEvent) => void): Promise<Subscription> {
    if (closed) throw unavailable('This replica is shutting down; reconnect shortly.');
    const key = Symbol('subscriber');
    subscribers.set(key, { filter, push });
    try {
      if (!running) {
        starting ??= start().finally(() => {
          starting = null;
        });
        await starting;
      }
    } catch (err) {
      subscribers.delete(key);
      throw err;
    }
    return {
      watermark,
      unsubscribe() {
        subscribers.delete(key);
        if (subscribers.size === 0) void stop();
      },
    };
  }

  /** Committed events in (afterId, upTo] matching `filter`, at most `limit`, oldest first. */
  async function replay(afterId: number, upTo: number, filter: EventFilter, limit = 200): Promise<AuditEvent[]> {
    return (await rows<EventRow>(control, replayPage(afterId, upTo, filter, limit))).map(presentEvent);
  }

  return {
    subscribe,
    replay,
    /** Stops polling (the process is closing); open subscriptions get no more events. */
    async close() {
      closed = true;
      subscribers.clear();
      await stop();
    },
    get subscribers() {
      return subscribers.size;
    },
  };
}

export type EventFeed = ReturnType<typeof createEventFeed>;

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

interface Writers {
  /** When (database clock) the open writers were read. */
  at: number;
  /** Whether the ids missing below a visible one first seen at `seenAt` can no longer arrive. */
  settled(seenAt: Date): boolean;
}

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
    // A poll of the previous run of the feed may still be in flight; two must never advance one watermark.
    await polling;
    // Start where nothing older can still arrive: before the oldest open writer (bounded by gapMaxMs), or
    // before this reading when there is none: an event inserted before it is final (its writer would hold
    // an xid), and one inserted after it (created_at is the insert's clock) is still ahead of the watermark.
    const { oldest, now } = await one<{ oldest: Date | null; now: Date }>(control, oldestWriterStart());
    const bound = now.getTime() - gapMaxMs;
    const from = oldest === null ? now : new Date(Math.max(oldest.getTime(), bound) - 1000);
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

  /**
   * Which gaps can no longer fill: reads the open writers. It speaks only for
   * gaps first seen before it was taken (`at`), and only for a page read after
   * it: a writer that commits between a page and the reading is gone from the
   * reading while its id is not in the page.
   */
  async function readWriters(): Promise<Writers> {
    const { oldest, now } = await one<{ oldest: Date | null; now: Date }>(control, oldestWriterStart());
    return {
      at: now.getTime(),
      settled: (seenAt) => oldest === null || oldest.getTime() > seenAt.getTime() || now.getTime() - seenAt.getTime() > gapMaxMs,
    };
  }

  function emit(event: AuditEvent): void {
    for (const sub of subscribers.values()) {
      if (matches(sub.filter, event)) sub.push(event);
    }
  }

  /**
   * Emits what is final. 'held': a gap holds the rest back; 'recheck': a gap
   * needs a reading of the writers taken after it was seen and before the page.
   */
  async function advance(page: Array<EventRow & { seen_at: Date }>, writers: Writers | null): Promise<'all' | 'held' | 'recheck'> {
    for (const row of page) {
      const id = Number(row.id);
      if (id > watermark + 1) {
        let seenAt = gapBelow.get(id);
        if (!seenAt) gapBelow.set(id, (seenAt = row.seen_at));
        if (!writers || writers.at < seenAt.getTime()) return 'recheck';
        if (!writers.settled(seenAt)) return 'held';
        if (row.seen_at.getTime() - seenAt.getTime() > gapMaxMs) {
          log.warn({ fromId: watermark + 1, toId: id - 1 }, 'event stream: gave up waiting for audit event ids held by a transaction open longer than the limit');
        }
      }
      gapBelow.delete(id);
      watermark = id;
      emit(presentEvent(row));
    }
    return 'all';
  }

  async function poll(): Promise<void> {
    try {
      // Taken before the page it judges; a tick with no gap reads no writers.
      let writers: Writers | null = null;
      for (let rechecks = 0; ;) {
        const page = await rows<EventRow & { seen_at: Date }>(control, eventsAfter(watermark, PAGE));
        const outcome = await advance(page, writers);
        for (const id of gapBelow.keys()) if (id <= watermark) gapBelow.delete(id);
        if (outcome === 'recheck') {
          // Gaps that keep opening further on wait for the next tick.
          if (++rechecks > 3) break;
          writers = await readWriters();
          continue;
        }
        if (outcome === 'held' || page.length < PAGE) break;
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

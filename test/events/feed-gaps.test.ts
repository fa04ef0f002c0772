// The event feed's gap rule on real PostgreSQL, at the one instant a timer
// cannot hit: a writer that holds a lower id commits after the feed read a
// page without it and before the feed read the open writers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { migrateControlDatabase } from '../../database/control-migrate.js';
import { createEventFeed } from '../../services/events/feed.js';
import type { AuditEvent } from '../../services/audit.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let pool: pg.Pool;
/** Runs once, just before the feed's next reading of pg_stat_activity. */
let beforeWritersRead: (() => Promise<void>) | null = null;
/** Runs once, just before the feed's next reading of where to start. */
let beforeStartRead: (() => Promise<void>) | null = null;

// The real pool, with doors at the reading of the open writers and of the starting point.
const control = {
  async query(q: { text: string; values?: unknown[] }) {
    if (beforeWritersRead && q.text.includes('pg_stat_activity')) {
      const step = beforeWritersRead;
      beforeWritersRead = null;
      await step();
    }
    if (beforeStartRead && q.text.includes('ORDER BY id DESC LIMIT 1')) {
      const step = beforeStartRead;
      beforeStartRead = null;
      await step();
    }
    return pool.query(q);
  },
} as unknown as pg.Pool;

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function insertEvent(client: pg.ClientBase | pg.Pool, type: string): Promise<number> {
  const res = await client.query(`INSERT INTO run_events (run_id, environment, type, actor) VALUES (NULL, 'staging', $1, 'test') RETURNING id`, [type]);
  return Number(res.rows[0].id);
}

before(async () => {
  db = await createTestDatabase('feed_gaps');
  await migrateControlDatabase(db.url);
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
});

after(async () => {
  await pool?.end();
  await db?.drop();
});

/** A feed on the real pool, what it sent, and a session for the slow writer; all closed after `fn`. */
async function withFeed(subscribe: boolean, fn: (f: { feed: ReturnType<typeof createEventFeed>; got: AuditEvent[]; open: pg.Client }) => Promise<void>): Promise<void> {
  const feed = createEventFeed({ control, log: silent, pollMs: 20 });
  const got: AuditEvent[] = [];
  const sub = subscribe ? await feed.subscribe({}, (e) => got.push(e)) : null;
  const open = new pg.Client({ connectionString: db.url });
  await open.connect();
  try {
    await fn({ feed, got, open });
  } finally {
    beforeWritersRead = null;
    beforeStartRead = null;
    sub?.unsubscribe();
    await feed.close();
    await open.end();
  }
}

const arrived = async (got: AuditEvent[], id: number) => {
  for (let i = 0; i < 200 && !got.some((e) => e.id === id); i++) await sleep(20);
};

test('a lower id that commits between the page and the writers reading is sent, before the higher one', async () => {
  await withFeed(true, async ({ got, open }) => {
    await open.query('BEGIN');
    const early = await insertEvent(open, 'test.slow-commit');
    // The feed's next reading of the writers will find none: the slow writer commits first.
    beforeWritersRead = async () => {
      await open.query('COMMIT');
    };
    const late = await insertEvent(pool, 'test.fast-commit');
    await arrived(got, late);
    assert.equal(beforeWritersRead, null, 'the feed read the writers while the gap was open');
    assert.deepEqual(got.map((e) => e.id), [early, late]);
  });
});

test('a gap still open at the reading holds the higher id until the lower commits, then both go in order', async () => {
  await withFeed(true, async ({ got, open }) => {
    await open.query('BEGIN');
    const early = await insertEvent(open, 'test.slow-commit');
    const late = await insertEvent(pool, 'test.fast-commit');
    await sleep(300);
    // What committed before the subscription is not sent: only these two.
    assert.deepEqual(got.map((e) => e.id), [], 'held while the lower id may still commit');
    await open.query('COMMIT');
    await arrived(got, late);
    assert.deepEqual(got.map((e) => e.id), [early, late]);
  });
});

test('a writer that begins while the feed starts, and commits a lower id after a higher one, is not under the watermark', async () => {
  await withFeed(false, async ({ feed, got, open }) => {
    let early = 0;
    let late = 0;
    // Between the feed's reading of the writers (none) and of the newest event.
    beforeStartRead = async () => {
      await open.query('BEGIN');
      early = await insertEvent(open, 'test.slow-commit');
      late = await insertEvent(pool, 'test.fast-commit');
    };
    const sub = await feed.subscribe({}, (e) => got.push(e));
    assert.equal(beforeStartRead, null);
    assert.ok(sub.watermark < early, `the watermark ${sub.watermark} leaves ${early} and ${late} to the live stream`);
    await open.query('COMMIT');
    await arrived(got, late);
    assert.deepEqual(got.map((e) => e.id), [early, late]);
    sub.unsubscribe();
  });
});

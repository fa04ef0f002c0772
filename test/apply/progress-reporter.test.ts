// The progress reporter (services/apply/progress.ts) keeps what an operator
// reads monotone: PostgreSQL re-targets its progress counters for the next
// phase before naming it (seen in the slow index-progress test: a btree build's
// 'sorting live tuples' first shows the scan's blocks done, then 0 of the tuples
// to load), and such a sample must not read as progress going backwards.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { migrateControlDatabase } from '../../database/control-migrate.js';
import { progressReporter, type RunProgress } from '../../services/apply/progress.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let control: TestDatabase;
let pool: pg.Pool;

before(async () => {
  control = await createTestDatabase('progress_reporter');
  await migrateControlDatabase(control.url);
  pool = new pg.Pool({ connectionString: control.url, max: 2 });
});

after(async () => {
  await pool.end();
  await control.drop();
});

const sample = (phase: string, done: number, total: number, unit: 'blocks' | 'tuples') => ({ command: 'create index', phase, done, total, unit });

test('within a phase a sample counting something else, or fewer, is ignored; a new phase starts afresh; clear ends it', async () => {
  const written: Array<RunProgress | null> = [];
  const reporter = progressReporter(pool, randomUUID(), (p) => written.push(p));
  const view = () => { const p = reporter.peek(); return p && [p.phase, p.done, p.total, p.unit]; };

  reporter.migrationStarted('2000_index', 0, 2);
  assert.deepEqual(view(), ['migrating', 0, 2, 'migrations']);
  reporter.statement(sample('building index: scanning table', 10, 100, 'blocks'));
  assert.deepEqual(view(), ['create index: building index: scanning table', 10, 100, 'blocks']);
  reporter.statement(sample('building index: scanning table', 60, 100, 'blocks'));
  reporter.statement(sample('building index: scanning table', 5, 100, 'blocks'));
  assert.deepEqual(view(), ['create index: building index: scanning table', 60, 100, 'blocks'], 'never backwards within a phase');
  reporter.statement(sample('building index: sorting live tuples', 100, 100, 'blocks'));
  reporter.statement(sample('building index: sorting live tuples', 0, 3000, 'tuples'));
  assert.deepEqual(view(), ['create index: building index: sorting live tuples', 100, 100, 'blocks'], 'the next phase\'s target is not this phase\'s progress');
  reporter.statement(sample('building index: loading tuples in tree', 300, 3000, 'tuples'));
  assert.deepEqual(view(), ['create index: building index: loading tuples in tree', 300, 3000, 'tuples'], 'a new phase starts from its own counters');
  reporter.statement(null);
  assert.deepEqual(view(), ['create index: building index: loading tuples in tree', 300, 3000, 'tuples'], 'no sample: the last one stands');
  reporter.migrationStarted('2100_next', 1, 2);
  assert.deepEqual(view(), ['migrating', 1, 2, 'migrations']);

  await reporter.clear();
  assert.equal(reporter.peek(), null);
  assert.equal(written.at(-1), null, 'the metric hears the end');
  assert.ok(written.some((p) => p?.phase === 'migrating') && written.some((p) => p?.phase.startsWith('create index')), 'phase changes are written at once');
});

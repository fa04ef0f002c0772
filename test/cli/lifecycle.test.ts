// A whole run driven through the built `sfm` only, against the service on a
// real port and real PostgreSQL: create, wait for preflight, two approvals,
// apply, wait with progress, report, rollback; and the runs that end badly
// (exit 1) or never get approved (exit 4).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, migrationSource, writeMigrations } from '../support/migrations.js';
import { exits, listen, sfm, UUID } from './helpers.js';

let t: TestApp;
let url: string;
let dir: string;
let backups: string;
let out: string;

const FAST = ['--interval', '150ms', '--timeout', '60s'];
const PROGRESS = /^status=[a-z_]+( phase=[a-z_.]+( \S+)?)?( progress=\S+ .+)?$/;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-cli-migrations-'));
  backups = await mkdtemp(join(tmpdir(), 'sf-cli-backups-'));
  out = await mkdtemp(join(tmpdir(), 'sf-cli-out-'));
  // production: engineering + sre approvals (the default), no windows so an
  // operator may apply now; no ETL smoke test and no post-apply watch.
  const env = (name: string) => `{ databaseUrlEnv: '${name.toUpperCase()}_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)},
      windows: [], lockTimeoutMs: 200, lockRetries: { attempts: 100, baseDelayMs: 100, maxDelayMs: 300 }, backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 },
      verify: { smokeEtl: false, watchMinutes: 0 } }`;
  t = await startTestApp({ label: 'cli_life', migrationConfigSource: `export default { environments: { staging: ${env('staging')}, production: ${env('production')} } };` });
  await writeMigrations(dir, FIXTURE_BASE);
  await applyMigrations(t.targets.production.url, dir, 2);
  await writeMigrations(dir, {
    ...FIXTURE_BASE,
    '2000_create-notes': migrationSource('CREATE TABLE notes (id int PRIMARY KEY, body text)', 'DROP TABLE notes'),
    '2500_add-score': FIXTURES.addScore,
  });
  url = await listen(t);
});

after(async () => {
  await t.close();
  for (const d of [dir, backups, out]) await rm(d, { recursive: true, force: true });
});

describe('sfm drives a run end to end', () => {
  let id: string;

  test('runs create prints the id; -q with the same idempotency key prints just that id', async () => {
    const args = ['runs', 'create', '--environment', 'production', '--description', 'cli end to end', '--ticket', 'OPS-9', '--idempotency-key', 'cli-e2e-1'];
    const created = await sfm(url, args, { as: 'alice' });
    exits(created, 0, 'create');
    const first = created.stdout.split('\n')[0]!;
    assert.match(first, new RegExp(`^Created run ${UUID.source}$`));
    id = first.split(' ').pop()!;
    assert.match(created.stdout, /migrations\s+2: 2000_create-notes, 2500_add-score/);
    assert.match(created.stdout, /needs engineering \+ sre/);
    assert.equal(created.stderr, '');

    const again = await sfm(url, [...args, '-q'], { as: 'alice' });
    exits(again, 0, 'create -q');
    assert.equal(again.stdout, `${id}\n`, 'only the id, and the same run (Idempotency-Key was sent)');
  });

  test('runs wait --until preflight reports progress on stderr and stops at awaiting_approval', async () => {
    const res = await sfm(url, ['runs', 'wait', id, '--until', 'preflight', ...FAST], { as: 'vic' });
    exits(res, 0, 'wait preflight');
    const lines = res.stderr.trim().split('\n');
    for (const line of lines) assert.match(line, PROGRESS);
    assert.match(lines[lines.length - 1]!, /^status=awaiting_approval phase=/);
    assert.equal(res.stdout, `run ${id} reached preflight: status=awaiting_approval\n`);
  });

  test('the preflight report, as Markdown and into a JSON file', async () => {
    const md = await sfm(url, ['runs', 'preflight', id, '--format', 'md'], { as: 'vic' });
    exits(md, 0, 'preflight md');
    assert.match(md.stdout, /^#/m, 'Markdown heading');
    assert.ok(md.stdout.includes('2500_add-score'));
    const file = join(out, 'preflight.json');
    const saved = await sfm(url, ['runs', 'preflight', id, '--output', file], { as: 'vic' });
    exits(saved, 0, 'preflight --output');
    assert.equal(saved.stdout, '');
    assert.match(saved.stderr, /^wrote .*preflight\.json \(\d+ bytes\)\n$/);
    assert.equal(JSON.parse(await readFile(file, 'utf8')).report.outcome, 'passed');
  });

  test('engineering (bob) then sre (carol) approve; apply before the second approval is refused', async () => {
    const eng = await sfm(url, ['runs', 'approve', id, '--role', 'engineering', '--comment', 'looks good'], { as: 'bob' });
    exits(eng, 0, 'approve engineering');
    assert.match(eng.stdout, new RegExp(`^Approved as engineering: run ${id} status=awaiting_approval\n`));
    assert.match(eng.stdout, /engineering approved by bob/);

    const early = await sfm(url, ['runs', 'apply', id, '--confirm', 'production'], { as: 'olga' });
    exits(early, 3, 'apply before sre approval');
    assert.match(early.stderr, /^error: 409 Conflict: .*awaiting_approval/);

    const sre = await sfm(url, ['--json', 'runs', 'approve', id, '--role', 'sre'], { as: 'carol' });
    exits(sre, 0, 'approve sre');
    const run = JSON.parse(sre.stdout);
    assert.equal(run.id, id);
    assert.ok(['approved', 'scheduled'].includes(run.status), run.status);
    assert.deepEqual(run.approvals.map((a: { subject: string }) => a.subject).sort(), ['bob', 'carol']);
  });

  test('runs apply --confirm, then runs wait follows status and phase (with the migration name) to succeeded', async () => {
    const wrong = await sfm(url, ['runs', 'apply', id, '--confirm', 'staging'], { as: 'olga' });
    exits(wrong, 3, 'apply with the wrong confirm');
    assert.match(wrong.stderr, /^error: 422 Unprocessable Content: "confirm" must be the environment name/);
    assert.match(wrong.stderr, /^ {2}body\/confirm: must equal the environment name$/m);

    // A session holding accounts keeps 2500 retrying its lock after 2000 has landed,
    // so the run sits in "applying" with 2000's event as the newest until we let go.
    const holder = new pg.Client({ connectionString: t.targets.production.url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE accounts IN ROW EXCLUSIVE MODE');
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await holder.query('COMMIT');
      await holder.end();
    };
    const safety = setTimeout(() => void release(), 10_000);
    try {
      const applied = await sfm(url, ['runs', 'apply', id, '--confirm', 'production'], { as: 'olga' });
      exits(applied, 0, 'apply');
      assert.match(applied.stdout, new RegExp(`^Apply started: run ${id} status=applying\nFollow it: sfm runs wait ${id}\n$`));

      const waited = await sfm(url, ['runs', 'wait', id, ...FAST], {
        as: 'vic',
        // Let go once a line shows 2500 waiting with the stream at a migration event (a read of the run can be ahead of the stream).
        onStderr: (soFar) => { if (/^status=applying phase=migration\.[^\n]*progress=2500_add-score/m.test(soFar)) void release(); },
      });
      exits(waited, 0, 'wait done');
      const lines = waited.stderr.trim().split('\n');
      for (const line of lines) assert.match(line, PROGRESS);
      // Each lock retry adds a lock_wait and a started event, so a line may come back, but never twice in a row.
      assert.ok(lines.every((l, i) => i === 0 || l !== lines[i - 1]), 'a line only when something changed');
      // The status printed follows the stream: it never goes back along the path.
      const path = ['approved', 'scheduled', 'applying', 'verifying', 'monitoring', 'succeeded'];
      const statuses = lines.map((l) => path.indexOf(/^status=(\w+)/.exec(l)![1]!));
      assert.deepEqual(statuses, [...statuses].sort((a, b) => a - b), lines.join('\n'));
      // While 2500 waits for its lock (2000 landed), the run's progress names it as the second of two.
      assert.ok(lines.some((l) => l.startsWith('status=applying phase=migration.') && l.endsWith('progress=2500_add-score migration 2/2')), lines.join('\n'));
      assert.equal(lines[lines.length - 1], 'status=succeeded phase=run.succeeded');
      assert.equal(waited.stdout, `run ${id} reached done: status=succeeded\n`);
    } finally {
      clearTimeout(safety);
      await release();
    }
  });

  test('report as Markdown, as --json and into a file; show, events, logs, environments', async () => {
    const md = await sfm(url, ['runs', 'report', id, '--format', 'md'], { as: 'vic' });
    exits(md, 0, 'report md');
    const backupId = JSON.parse((await sfm(url, ['--json', 'runs', 'show', id], { as: 'vic' })).stdout).backup.id as string;
    assert.ok(md.stdout.includes(`Backup: \`${backupId}\``), md.stdout);

    const json = await sfm(url, ['runs', 'report', id, '--json'], { as: 'vic' });
    exits(json, 0, 'report --json');
    const report = JSON.parse(json.stdout);
    assert.equal(report.apply.report.outcome, 'succeeded');
    assert.deepEqual(report.apply.report.migrations.map((m: { name: string }) => m.name), ['2000_create-notes', '2500_add-score']);

    const file = join(out, 'report.md');
    exits(await sfm(url, ['runs', 'report', id, '--format', 'md', '--output', file], { as: 'vic' }), 0, 'report --output');
    assert.equal(await readFile(file, 'utf8'), md.stdout);

    const show = await sfm(url, ['runs', 'show', id], { as: 'vic' });
    exits(show, 0, 'show');
    assert.match(show.stdout, /^status\s+succeeded$/m);
    assert.match(show.stdout, /^ticket\s+OPS-9$/m);
    assert.match(show.stdout, new RegExp(`^backup\\s+${backupId} \\(pg_dump, \\d+ bytes, verified `, 'm'));

    const events = await sfm(url, ['runs', 'events', id], { as: 'vic' });
    exits(events, 0, 'events');
    assert.match(events.stdout, /^AT\s+TYPE\s+ACTOR/);
    assert.match(events.stdout, /migration\.applied\s+olga\s+2500_add-score/);

    const logs = await sfm(url, ['runs', 'logs', id], { as: 'vic' });
    exits(logs, 0, 'logs');
    assert.match(logs.stdout, /\[migrate\]/);
    assert.equal(JSON.parse((await sfm(url, ['--json', 'runs', 'logs', id], { as: 'vic' })).stdout).log, logs.stdout);

    const list = await sfm(url, ['runs', 'list', '--environment', 'production', '--status', 'succeeded'], { as: 'vic' });
    exits(list, 0, 'list');
    assert.match(list.stdout, new RegExp(`^${id}\\s+production\\s+succeeded\\s`, 'm'));

    const envs = await sfm(url, ['environments'], { as: 'vic' });
    exits(envs, 0, 'environments');
    assert.match(envs.stdout, /^production\s+reachable\s+4\s+0\s+engineering\+sre\s+any time\s+-$/m);
    const windows = await sfm(url, ['windows', 'production', '--count', '3'], { as: 'vic' });
    exits(windows, 0, 'windows');
    assert.match(windows.stdout, /production has no maintenance windows/);
  });

  test('rollback: the operator asks, the sre approves, the run ends rolled_back (wait exits 1)', async () => {
    const asked = await sfm(url, ['runs', 'rollback', id, '--mode', 'down', '--confirm', 'production', '--reason', 'cli test'], { as: 'olga' });
    exits(asked, 0, 'rollback request');
    assert.match(asked.stdout, new RegExp(`^rollback request ${UUID.source} mode=down status=awaiting_approval requested by olga\n`));

    const status = await sfm(url, ['--json', 'runs', 'rollback', id, '--status'], { as: 'vic' });
    exits(status, 0, 'rollback --status');
    assert.equal(JSON.parse(status.stdout)[0].status, 'awaiting_approval');

    // The request shows the plan and the command to approve exactly that plan.
    assert.match(asked.stdout, /^down plan of run .*, digest [0-9a-f]{64}$/m);
    const digest = /--plan-digest ([0-9a-f]{64})/.exec(asked.stdout)![1]!;
    const plan = await sfm(url, ['--json', 'runs', 'rollback', id, '--plan', '--mode', 'down'], { as: 'carol' });
    exits(plan, 0, 'rollback --plan');
    assert.equal(JSON.parse(plan.stdout).digest, digest);
    const noDigest = await sfm(url, ['runs', 'rollback', id, '--approve'], { as: 'carol' });
    exits(noDigest, 2, 'approve without --plan-digest');
    assert.match(noDigest.stderr, /--approve needs --plan-digest/);

    const approved = await sfm(url, ['runs', 'rollback', id, '--approve', '--comment', 'ok', '--plan-digest', digest], { as: 'carol' });
    exits(approved, 0, 'rollback approve');
    assert.match(approved.stdout, /status=running/);

    const waited = await sfm(url, ['runs', 'wait', id, ...FAST], { as: 'vic' });
    exits(waited, 1, 'wait on a rolled back run');
    assert.match(waited.stderr, new RegExp(`^error: run ${id} ended rolled_back\n$`, 'm'));
    // Asked to follow the rollback to its end: reaching one of the statuses named is success.
    const followed = await sfm(url, ['runs', 'wait', id, '--until', 'rolled_back,restored', ...FAST], { as: 'vic' });
    exits(followed, 0, 'wait --until rolled_back,restored');
    assert.match(followed.stdout, new RegExp(`^run ${id} reached rolled_back or restored: status=rolled_back\n$`));
    const notThere = await sfm(url, ['runs', 'wait', id, '--until', 'restored', ...FAST], { as: 'vic' });
    exits(notThere, 1, 'wait --until restored on a rolled back run');
    assert.match(notThere.stderr, new RegExp(`ended rolled_back before reaching restored`));
    const unknown = await sfm(url, ['runs', 'wait', id, '--until', 'restored,finished', ...FAST], { as: 'vic' });
    exits(unknown, 2, 'wait --until with an unknown status');
    assert.match(unknown.stderr, /Unknown status finished/);
  });
});

describe('runs that do not get there', () => {
  test('a rejected run: runs wait exits 1 naming the status; --json still prints the run', async () => {
    const created = await sfm(url, ['runs', 'create', '--environment', 'staging', '--description', 'to be rejected', '-q'], { as: 'alice' });
    exits(created, 0, 'create');
    const id = created.stdout.trim();
    assert.match(id, new RegExp(`^${UUID.source}$`));
    exits(await sfm(url, ['runs', 'wait', id, '--until', 'preflight', ...FAST], { as: 'vic' }), 0, 'wait preflight');
    const rejected = await sfm(url, ['runs', 'reject', id, '--role', 'engineering', '--comment', 'not now'], { as: 'bob' });
    exits(rejected, 0, 'reject');
    assert.match(rejected.stdout, /^Rejected as engineering: .* status=rejected\n/);

    const waited = await sfm(url, ['--json', 'runs', 'wait', id, '--until', 'approved', ...FAST], { as: 'vic' });
    exits(waited, 1, 'wait on a rejected run');
    assert.equal(JSON.parse(waited.stdout).status, 'rejected');
    assert.match(waited.stderr, new RegExp(`^error: run ${id} ended rejected before reaching approved\n$`, 'm'));
  });

  test('a run left awaiting approval: runs wait --timeout 1s exits 4; cancelled, it exits 1', async () => {
    const created = await sfm(url, ['runs', 'create', '--environment', 'staging', '--description', 'never approved', '-q'], { as: 'alice' });
    exits(created, 0, 'create');
    const id = created.stdout.trim();
    exits(await sfm(url, ['runs', 'wait', id, '--until', 'preflight', ...FAST], { as: 'vic' }), 0, 'wait preflight');

    const started = Date.now();
    const timedOut = await sfm(url, ['runs', 'wait', id, '--until', 'approved', '--timeout', '1s', '--interval', '300ms'], { as: 'vic' });
    exits(timedOut, 4, 'wait timeout');
    assert.ok(Date.now() - started < 5000, 'gives up at the timeout');
    assert.match(timedOut.stderr, /^status=awaiting_approval phase=/);
    assert.match(timedOut.stderr, new RegExp(`^error: timed out after 1s waiting for run ${id} to reach approved \\(status=awaiting_approval\\)$`, 'm'));
    assert.equal(timedOut.stdout, '');

    const cancelled = await sfm(url, ['runs', 'cancel', id, '--reason', 'cli test cleanup'], { as: 'alice' });
    exits(cancelled, 0, 'cancel');
    assert.equal(cancelled.stdout, `Cancelled: run ${id} status=cancelled\n`);
    const waited = await sfm(url, ['runs', 'wait', id, ...FAST], { as: 'vic' });
    exits(waited, 1, 'wait on a cancelled run');
    assert.match(waited.stderr, /ended cancelled/);
  });
});

describe('runs wait behind a stream that lags', () => {
  test('the status it prints follows the stream, never forward and back, though a read of the run is ahead of it', async () => {
    const created = await sfm(url, ['runs', 'create', '--environment', 'staging', '--description', 'behind a lagging stream', '-q'], { as: 'alice' });
    exits(created, 0, 'create');
    const id = created.stdout.trim();
    exits(await sfm(url, ['runs', 'wait', id, '--until', 'preflight', ...FAST], { as: 'vic' }), 0, 'wait preflight');
    // Staging needs the engineering approval alone.
    exits(await sfm(url, ['runs', 'approve', id, '--role', 'engineering'], { as: 'bob' }), 0, 'approve engineering');
    // An event id taken and not committed: the stream holds everything after it (its order is final) until it goes.
    const holder = new pg.Client({ connectionString: t.control.url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`INSERT INTO run_events (run_id, environment, type, actor) VALUES (NULL, 'production', 'test.held', 'test')`);
    try {
      const waiting = sfm(url, ['runs', 'wait', id, '--until', 'applied', ...FAST], { as: 'vic' });
      exits(await sfm(url, ['runs', 'apply', id, '--confirm', 'staging'], { as: 'olga' }), 0, 'apply');
      // The whole apply lands while the stream is held: a read of the run is then ahead of every event the stream brings.
      await t.settle();
      await holder.query('ROLLBACK');
      const waited = await waiting;
      exits(waited, 0, 'wait done');
      const lines = waited.stderr.trim().split('\n');
      const path = ['approved', 'scheduled', 'applying', 'verifying', 'monitoring', 'succeeded'];
      const statuses = lines.map((l) => path.indexOf(/^status=(\w+)/.exec(l)![1]!));
      assert.ok(statuses.every((s) => s >= 0), lines.join('\n'));
      assert.deepEqual(statuses, [...statuses].sort((a, b) => a - b), `the status goes back:\n${lines.join('\n')}`);
      assert.ok(lines.some((l) => l.startsWith('status=applying phase=')), lines.join('\n'));
      assert.equal(lines[lines.length - 1], 'status=succeeded phase=run.succeeded');
    } finally {
      await holder.end().catch(() => undefined);
    }
  });
});

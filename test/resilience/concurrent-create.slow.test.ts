// 200 run creations at once, each with its own Idempotency-Key, spread over
// two service processes on one control database and four environments: per
// environment exactly one 201, every other answer a 409 problem+json naming
// the run that won, no 5xx, and nothing half-written (every run has its
// run.created event, every idempotency key is bound to the run it created,
// no key was kept for a refused request).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { FIXTURES } from '../support/migrations.js';
import { serverSetup, serverToken, startServer, testEnvironment, waitFor, type ServerProcess } from '../scheduler/server-process.js';

const ENVS = ['c1', 'c2', 'c3', 'c4'];
const REQUESTS = 200;

let control: TestDatabase;
const targets: Record<string, TestDatabase> = {};
let dir: string;
let servers: ServerProcess[] = [];

before(async () => {
  control = await createTestDatabase('burst_ctl');
  for (const e of ENVS) targets[e] = await createTestDatabase(`burst_${e}`);
  dir = await mkdtemp(join(tmpdir(), 'sf-burst-'));
  const migrationsDir = join(dir, 'migrations');
  await mkdir(migrationsDir);
  await writeFile(join(migrationsDir, '1000_create-accounts.js'), FIXTURES.accounts);
  const env = await serverSetup(dir, control.url, Object.fromEntries(ENVS.map((e) => [e, testEnvironment(e, migrationsDir, dir)])), Object.fromEntries(ENVS.map((e) => [e, targets[e]!.url])));
  // One after the other: both migrate the same control database at start-up.
  servers = [await startServer('burst-a', env), await startServer('burst-b', env)];
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, ...Object.values(targets)].map((db) => db?.drop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Outcome { i: number; env: string; key: string; server: string; status: number; type: string; body: any; ms: number }

test(`${REQUESTS} concurrent creations over 2 processes: one active run per environment, the rest 409, nothing half-written`, { timeout: 120_000 }, async () => {
  const requests = Array.from({ length: REQUESTS }, (_, i) => ({ i, env: ENVS[i % ENVS.length]!, key: `burst-${i}`, server: servers[Math.floor(i / ENVS.length) % 2]! }));
  const t0 = performance.now();
  const outcomes: Outcome[] = await Promise.all(requests.map(async ({ i, env, key, server }) => {
    const started = performance.now();
    const res = await fetch(`${server.base}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${serverToken('alice')}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ environment: env, description: `burst ${i}` }),
    });
    const text = await res.text();
    return { i, env, key, server: server.name, status: res.status, type: res.headers.get('content-type') ?? '', body: JSON.parse(text), ms: performance.now() - started };
  }));
  const wallMs = performance.now() - t0;

  const byStatus = new Map<number, number>();
  for (const o of outcomes) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
  const summary = JSON.stringify(Object.fromEntries(byStatus));
  assert.deepEqual([...byStatus.keys()].sort(), [201, 409], `only 201 and 409: ${summary} ${JSON.stringify(outcomes.find((o) => o.status !== 201 && o.status !== 409)?.body ?? null)}`);
  for (const server of servers) assert.equal(outcomes.filter((o) => o.server === server.name).length, REQUESTS / 2, `${server.name} answered its half`);

  const winners = new Map<string, Outcome>();
  for (const e of ENVS) {
    const created = outcomes.filter((o) => o.env === e && o.status === 201);
    assert.equal(created.length, 1, `${e}: ${created.length} runs created`);
    winners.set(e, created[0]!);
  }
  for (const o of outcomes.filter((x) => x.status === 409)) {
    assert.match(o.type, /^application\/problem\+json/);
    assert.equal(o.body.status, 409);
    assert.match(o.body.detail, new RegExp(`Environment "${o.env}" already has an active run`));
    assert.equal(o.body.activeRunId, winners.get(o.env)!.body.id, `409 for ${o.key} names the run that won`);
  }

  // The control database holds exactly the four runs, each complete; keys only for them.
  const { rows: runs } = await control.query('SELECT id, environment, status FROM runs ORDER BY environment');
  assert.deepEqual(runs.map((r) => [r.environment, r.id]), ENVS.map((e) => [e, winners.get(e)!.body.id]));
  const { rows: created } = await control.query(`SELECT run_id, count(*)::int AS n FROM run_events WHERE type = 'run.created' GROUP BY run_id`);
  assert.deepEqual(created.map((c) => [c.run_id, c.n]).sort(), runs.map((r) => [r.id, 1]).sort(), 'every run has exactly one run.created event');
  const { rows: orphans } = await control.query('SELECT count(*)::int AS n FROM run_events WHERE run_id IS NOT NULL AND run_id NOT IN (SELECT id FROM runs)');
  assert.equal(orphans[0].n, 0);
  const { rows: keys } = await control.query('SELECT key, run_id FROM idempotency_keys ORDER BY key');
  assert.deepEqual(keys.map((k) => [k.key, k.run_id]).sort(), ENVS.map((e) => [winners.get(e)!.key, winners.get(e)!.body.id]).sort(),
    'one key per created run, bound to it; none kept for refused requests');

  // The winners go on normally (preflight on whichever process created them).
  await waitFor('the four preflights', async () => {
    const { rows } = await control.query('SELECT status FROM runs');
    if (rows.some((r) => r.status === 'preflight_failed')) throw new Error('a preflight failed');
    return rows.every((r) => r.status === 'awaiting_approval') ? true : undefined;
  }, 60_000);

  const ms = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  const pct = (p: number) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]!;
  process.stderr.write(`${REQUESTS} concurrent creations over 2 processes: ${summary} in ${Math.round(wallMs)} ms wall; ` +
    `latency p50 ${Math.round(pct(50))} ms, p95 ${Math.round(pct(95))} ms, max ${Math.round(pct(100))} ms; ` +
    `winners by process ${ENVS.map((e) => `${e}:${winners.get(e)!.server}`).join(' ')}\n`);
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { takeBatchLockShared } from '../../database/sql/etl-control.js';
import { NO_ETL_CONTROL_NOTE, ALREADY_PAUSED_NOTE, WorkerPauseError, pauseWorkers, resumeWorkers, type PauseState } from '../../services/apply/workers.js';
import { parseMigrationConfig, type EnvironmentConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let tmp: string;

function environment(workers: Record<string, unknown>): EnvironmentConfig {
  return parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', workers } } }, PROJECT_ROOT).staging!;
}

const sqlEnv = (pauseTimeoutMs = 5000) => environment({ pause: { method: 'sql' }, pauseTimeoutMs });

function options(env: EnvironmentConfig, target = db, extra: { log?: (line: string) => void; reason?: string } = {}) {
  return { environment: env, targetUrl: target.url, runId: 'run-1234', actor: 'alice', reason: extra.reason ?? 'apply of run run-1234', log: extra.log ?? (() => undefined) };
}

async function rejectsWithPauseError(promise: Promise<unknown>, pattern: RegExp): Promise<WorkerPauseError> {
  let caught: unknown;
  await promise.then(() => undefined, (err: unknown) => { caught = err; });
  assert.ok(caught instanceof WorkerPauseError, `expected a WorkerPauseError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sf-workers-test-'));
  db = await createTestDatabase('workers');
  await runner({
    databaseUrl: db.url, dir: resolve(PROJECT_ROOT, 'database/migrations'), migrationsTable: 'pgmigrations',
    direction: 'up', count: Infinity, singleTransaction: false, log: () => undefined,
  });
});

after(async () => {
  await db.drop();
  await rm(tmp, { recursive: true, force: true });
});

describe('sql pause (etl_control + advisory lock)', () => {
  /** A worker's batch: one transaction holding the shared batch lock until `release` is called. */
  async function startBatch() {
    const client = new pg.Client({ connectionString: db.url, application_name: 'test-etl-worker' });
    await client.connect();
    await client.query('BEGIN');
    const lock = takeBatchLockShared();
    await client.query(lock.text, lock.values);
    let endedAt = 0;
    return {
      async release() {
        await client.query('COMMIT');
        endedAt = performance.now();
        await client.end();
      },
      endedAt: () => endedAt,
    };
  }

  const control = async () => (await db.query('SELECT paused, reason, changed_by FROM etl_control')).rows[0];

  /** The pauser's session and lock must be gone; a closed backend can take a moment to leave pg_stat_activity. */
  async function assertNothingLeftBehind() {
    let sessions = -1;
    for (let i = 0; i < 40 && sessions !== 0; i++) {
      if (i) await sleep(50);
      sessions = (await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'starforge-pause' AND datname = $1`, [db.name])).rows[0].n;
    }
    assert.equal(sessions, 0, 'no pauser session remains');
    const locks = await db.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = $1)`, [db.name]);
    assert.equal(locks.rows[0].n, 0, 'no advisory lock is held');
  }

  afterEach(async () => {
    await db.query(`UPDATE etl_control SET paused = false, reason = NULL, changed_by = NULL`);
  });

  test('pause sets the flag with reason and actor; resume clears it; nothing is left behind', async () => {
    const logged: string[] = [];
    const state = await pauseWorkers(options(sqlEnv(), db, { log: (l) => logged.push(l) }));
    assert.equal(state.method, 'sql');
    assert.equal(state.note, null);
    assert.equal(state.previousReplicas, null);
    assert.ok(!Number.isNaN(Date.parse(state.pausedAt)));
    assert.deepEqual(await control(), { paused: true, reason: 'apply of run run-1234', changed_by: 'alice' });
    assert.ok(logged.some((l) => /no ETL batch in flight/.test(l)), logged.join('\n'));
    await assertNothingLeftBehind();
    await resumeWorkers(state, options(sqlEnv(), db, { reason: 'apply succeeded' }));
    assert.deepEqual(await control(), { paused: false, reason: 'apply succeeded', changed_by: 'alice' });
    await assertNothingLeftBehind();
  });

  test('workers an operator paused before the run stay paused, with their reason, after resume', async () => {
    await db.query(`UPDATE etl_control SET paused = true, reason = 'incident INC-7', changed_by = 'oncall'`);
    const state = await pauseWorkers(options(sqlEnv()));
    assert.ok(state.note?.startsWith(ALREADY_PAUSED_NOTE), String(state.note));
    assert.match(state.note!, /oncall: incident INC-7/);
    assert.deepEqual(await control(), { paused: true, reason: 'incident INC-7', changed_by: 'oncall' }, 'their flag and reason are kept');
    await resumeWorkers(state, options(sqlEnv(), db, { reason: 'apply succeeded' }));
    assert.deepEqual(await control(), { paused: true, reason: 'incident INC-7', changed_by: 'oncall' }, 'still paused after the apply');
    await assertNothingLeftBehind();
  });

  test('a pause someone else sets while we hold the ETL paused is theirs: resume leaves it', async () => {
    const state = await pauseWorkers(options(sqlEnv()));
    await db.query(`UPDATE etl_control SET paused = true, reason = 'investigating INC-9', changed_by = 'oncall'`);
    await resumeWorkers(state, options(sqlEnv(), db, { reason: 'apply succeeded' }));
    assert.deepEqual(await control(), { paused: true, reason: 'investigating INC-9', changed_by: 'oncall' });
    await assertNothingLeftBehind();
  });

  test('waits for an in-flight batch to commit before returning', async () => {
    const batch = await startBatch();
    const started = performance.now();
    const holdMs = 500;
    const releasing = sleep(holdMs).then(async () => {
      // The flag is already visible to workers while the pauser waits.
      assert.equal((await control()).paused, true);
      await batch.release();
    });
    const state = await pauseWorkers(options(sqlEnv()));
    const returnedAt = performance.now();
    await releasing;
    assert.equal(state.note, null);
    assert.ok(batch.endedAt() > 0 && returnedAt >= batch.endedAt(), 'pause returned only after the batch transaction ended');
    assert.ok(returnedAt - started >= holdMs - 20, `pause took ${Math.round(returnedAt - started)} ms`);
    await resumeWorkers(state, options(sqlEnv()));
    await assertNothingLeftBehind();
  });

  test('a batch outlasting pauseTimeoutMs fails the pause and clears the flag again', async () => {
    const batch = await startBatch();
    try {
      const started = performance.now();
      await rejectsWithPauseError(pauseWorkers(options(sqlEnv(300))), /workers did not finish their batch within 300 ms/);
      assert.ok(performance.now() - started < 2000);
      assert.equal((await control()).paused, false);
    } finally {
      await batch.release();
    }
    await assertNothingLeftBehind();
  });

  test('a database without etl_control: a note, no error, and resume does nothing', async () => {
    const fresh = await createTestDatabase('workers_fresh');
    try {
      const state = await pauseWorkers(options(sqlEnv(), fresh));
      assert.equal(state.note, NO_ETL_CONTROL_NOTE);
      assert.match(state.note, /no etl_control table yet: no workers to pause/);
      await resumeWorkers(state, options(sqlEnv(), fresh));
    } finally {
      await fresh.drop();
    }
  });

  test('a target whose search_path leaves out public: the pause still finds, sets and clears public.etl_control', async () => {
    const other = await createTestDatabase('workers_path');
    try {
      await other.query(`CREATE TABLE public.etl_control (id boolean PRIMARY KEY DEFAULT true, paused boolean NOT NULL DEFAULT false, reason text, changed_by text, changed_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO public.etl_control DEFAULT VALUES; CREATE SCHEMA app; ALTER DATABASE ${other.name} SET search_path = app`);
      const state = await pauseWorkers(options(sqlEnv(), other));
      assert.equal(state.note, null);
      assert.equal((await other.query('SELECT paused FROM public.etl_control')).rows[0].paused, true);
      assert.equal(await resumeWorkers(state, options(sqlEnv(), other)), undefined, 'resumed, not "not configured"');
      assert.equal((await other.query('SELECT paused FROM public.etl_control')).rows[0].paused, false);
    } finally {
      await other.drop();
    }
  });

  test('an unreachable target is a WorkerPauseError without the password', async () => {
    const url = new URL(db.url);
    url.password = 'pw-' + randomBytes(6).toString('hex');
    url.port = '1';
    const err = await rejectsWithPauseError(pauseWorkers({ ...options(sqlEnv()), targetUrl: url.toString() }), /cannot connect to the target: connection refused/);
    assert.ok(!err.message.includes(url.password));
  });
});

describe('command pause', () => {
  let received: string;
  const script = async (name: string, body: string) => {
    const path = join(tmp, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
    return path;
  };

  before(async () => {
    // As in production: the target's URL is in the service's environment; the commands must not inherit it.
    process.env.STAGING_DATABASE_URL = db.url;
    received = join(tmp, 'commands.log');
    await script('replicas.sh', 'echo "kubectl says:"\necho 3');
    await script('pause.sh', `echo "pause env=$STARFORGE_ENVIRONMENT run=$STARFORGE_RUN_ID reason=$STARFORGE_REASON url=\${STAGING_DATABASE_URL:-none}" >> ${received}`);
    await script('resume.sh', `echo "resume arg=$1 env-replicas=\${STARFORGE_PREVIOUS_REPLICAS:-unset} reason=$STARFORGE_REASON" >> ${received}`);
  });

  after(() => {
    delete process.env.STAGING_DATABASE_URL;
  });

  const commandEnv = (pause: Record<string, unknown>) =>
    environment({ pause: { method: 'command', pause: `${tmp}/pause.sh`, resume: `${tmp}/resume.sh --replicas={replicas}`, ...pause }, pauseTimeoutMs: 5000 });

  test('records the replica count and hands it to resume as {replicas} and STARFORGE_PREVIOUS_REPLICAS', async () => {
    await rm(received, { force: true });
    const env = commandEnv({ replicasCommand: `${tmp}/replicas.sh` });
    const state = await pauseWorkers(options(env));
    assert.equal(state.method, 'command');
    assert.equal(state.previousReplicas, 3);
    await resumeWorkers(state, options(env, db, { reason: 'apply succeeded' }));
    assert.deepEqual((await readFile(received, 'utf8')).trim().split('\n'), [
      'pause env=staging run=run-1234 reason=apply of run run-1234 url=none',
      'resume arg=--replicas=3 env-replicas=3 reason=apply succeeded',
    ]);
  });

  test('without replicasCommand, a resume command needing {replicas} is refused; one without it runs', async () => {
    await rm(received, { force: true });
    const state = await pauseWorkers(options(commandEnv({})));
    assert.equal(state.previousReplicas, null);
    await rejectsWithPauseError(resumeWorkers(state, options(commandEnv({}))), /needs \{replicas\}/);
    await resumeWorkers(state, options(commandEnv({ resume: `${tmp}/resume.sh plain` })));
    assert.match(await readFile(received, 'utf8'), /resume arg=plain env-replicas=unset/);
  });

  test('a replicas command printing no number is a WorkerPauseError, and pause is not run', async () => {
    await rm(received, { force: true });
    await rejectsWithPauseError(pauseWorkers(options(commandEnv({ replicasCommand: 'echo "three"' }))), /whole number of replicas/);
    await assert.rejects(readFile(received, 'utf8'), { code: 'ENOENT' });
  });

  test('a failing pause command is a WorkerPauseError with its exit code and stderr', async () => {
    await rejectsWithPauseError(
      pauseWorkers(options(commandEnv({ pause: 'echo "deployment not found" >&2; exit 2' }))),
      /pause command failed: command exited with code 2: deployment not found/,
    );
  });

  test('a hanging pause command times out at pauseTimeoutMs', async () => {
    const env = environment({ pause: { method: 'command', pause: 'sleep 30', resume: 'true' }, pauseTimeoutMs: 200 });
    await rejectsWithPauseError(pauseWorkers(options(env)), /timed out after 200 ms/);
  });
});

describe('http pause', () => {
  interface Received { method: string; url: string; authorization: string | undefined; contentType: string | undefined; body: unknown }
  let server: Server;
  let base: string;
  let requests: Received[] = [];
  let status = 200;
  const token = 'tok-' + randomBytes(12).toString('hex');

  const bodyOf = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  };

  before(async () => {
    process.env.SF_TEST_WORKERS_TOKEN = token;
    server = createServer((req, res) => {
      void bodyOf(req).then((body) => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
        // The answer echoes the token, as a careless controller might: it must not reach the error.
        res.writeHead(status, { 'content-type': 'text/plain' }).end(`status ${status} for ${req.headers.authorization ?? ''}`);
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    delete process.env.SF_TEST_WORKERS_TOKEN;
    await new Promise((done) => server.close(done));
  });

  afterEach(() => {
    requests = [];
    status = 200;
  });

  const httpEnv = (tokenEnv?: string) =>
    environment({ pause: { method: 'http', pauseUrl: `${base}/workers/pause`, resumeUrl: `${base}/workers/resume`, ...(tokenEnv ? { tokenEnv } : {}) }, pauseTimeoutMs: 5000 });

  test('pause and resume POST JSON with the bearer token', async () => {
    const env = httpEnv('SF_TEST_WORKERS_TOKEN');
    const state: PauseState = await pauseWorkers(options(env));
    assert.deepEqual({ ...state, pausedAt: '' }, { method: 'http', pausedAt: '', previousReplicas: null, note: null });
    await resumeWorkers(state, options(env, db, { reason: 'apply succeeded' }));
    assert.deepEqual(requests, [
      { method: 'POST', url: '/workers/pause', authorization: `Bearer ${token}`, contentType: 'application/json', body: { environment: 'staging', runId: 'run-1234', reason: 'apply of run run-1234', action: 'pause' } },
      { method: 'POST', url: '/workers/resume', authorization: `Bearer ${token}`, contentType: 'application/json', body: { environment: 'staging', runId: 'run-1234', reason: 'apply succeeded', action: 'resume' } },
    ]);
  });

  test('without tokenEnv no authorization header is sent', async () => {
    await pauseWorkers(options(httpEnv()));
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.authorization, undefined);
  });

  test('a 500 answer is a WorkerPauseError with the status and without the token', async () => {
    status = 500;
    const err = await rejectsWithPauseError(pauseWorkers(options(httpEnv('SF_TEST_WORKERS_TOKEN'))), /pause request to http:\/\/127\.0\.0\.1:\d+ answered HTTP 500/);
    assert.ok(!err.message.includes(token), err.message);
    assert.equal(requests.length, 1, 'the request was made');
  });

  test('a tokenEnv that is not set is refused before any request', async () => {
    await rejectsWithPauseError(pauseWorkers(options(httpEnv('SF_TEST_UNSET_TOKEN'))), /SF_TEST_UNSET_TOKEN \(workers.pause.tokenEnv\) is not set/);
    assert.equal(requests.length, 0);
  });
});

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PROJECT_ROOT } from '../database/paths.js';
import { freePort } from './support/net.js';

const SERVER = join(PROJECT_ROOT, 'dist/src/server.js');

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ['DATABASE_URL', 'STAGING_DATABASE_URL', 'PRODUCTION_DATABASE_URL', 'AUTH_TOKENS', 'AUTH_TOKENS_FILE', 'MIGRATION_CONFIG', 'PORT', 'DATA_DIR', 'TEST_DATABASE_URL']) delete env[key];
  return { ...env, LOG_LEVEL: 'warn', ...extra };
}


function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(env: NodeJS.ProcessEnv): Started {
  const child = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForHealth(base: string, server: Started, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (server.child.exitCode !== null) throw new Error(`server exited early:\n${server.output()}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.status === 200) return Date.now() - started;
    } catch {
      /* not yet listening */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no /healthz within ${timeoutMs} ms:\n${server.output()}`);
}

describe('configuration errors stop start-up', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['PORT', { PORT: 'abc' }, /PORT/],
    ['LOG_LEVEL', { LOG_LEVEL: 'chatty' }, /LOG_LEVEL/],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://root:SuperSecretPw@db/x' }, /DATABASE_URL/],
    ['AUTH_TOKENS', { AUTH_TOKENS: '[{"subject":"x","roles":["god"],"token":"0123456789abcdef"}]' }, /AUTH_TOKENS\[0\]\.roles/],
  ];
  for (const [key, env, pattern] of cases) {
    test(`a bad ${key} exits non-zero naming it`, async () => {
      const server = start(cleanEnv(env));
      const code = await server.exited;
      assert.notEqual(code, 0);
      assert.match(server.output(), pattern);
      assert.match(server.output(), /Configuration error/);
      assert.equal(server.output().includes('SuperSecretPw'), false);
    });
  }

  test('a bad window in MIGRATION_CONFIG exits naming the config path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sf-badcfg-'));
    try {
      const file = join(dir, 'migration-config.js');
      await writeFile(file, `export default { environments: { production: { databaseUrlEnv: 'P', windows: [{ cron: 'every tuesday', durationMinutes: 60 }] } } };`);
      const server = start(cleanEnv({ MIGRATION_CONFIG: file }));
      assert.notEqual(await server.exited, 0);
      assert.match(server.output(), /environments\.production\.windows\[0\]\.cron/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('npm start with no DATABASE_URL: embedded PostgreSQL', () => {
  let dataDir: string;
  let port: number;
  let pgPort: number;
  let base: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sf-embedded-'));
    port = await freePort();
    pgPort = await freePort();
    base = `http://127.0.0.1:${port}`;
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  const env = () => cleanEnv({ PORT: String(port), DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort) });

  test('serves within 30 s, writes demo tokens, stops cleanly on SIGTERM, and a second start reuses the data', async () => {
    const first = start(env());
    let runId: string;
    try {
      await waitForHealth(base, first, 30_000);
      const docs = await (await fetch(`${base}/docs/json`)).json() as { openapi: string };
      assert.match(docs.openapi, /^3\./);
      assert.match(first.output(), new RegExp(`${base}/docs`));
      const tokensFile = join(dataDir, 'demo-tokens.json');
      assert.ok(first.output().includes(tokensFile), 'says where the demo tokens are');
      const tokens = JSON.parse(await readFile(tokensFile, 'utf8')) as Array<{ subject: string; roles: string[]; token: string }>;
      assert.deepEqual(tokens.map((t) => t.roles[0]).sort(), ['admin', 'engineering', 'operator', 'requester', 'sre', 'viewer']);
      const requester = tokens.find((t) => t.roles.includes('requester'))!.token;
      const envs = await (await fetch(`${base}/v1/environments`, { headers: { authorization: `Bearer ${requester}` } })).json() as Array<{ name: string; reachable: boolean; pending: unknown[] }>;
      assert.deepEqual(envs.map((e) => [e.name, e.reachable, e.pending.length]), [['staging', true, 8], ['production', true, 8]]);
      const created = await fetch(`${base}/v1/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${requester}`, 'content-type': 'application/json' },
        body: JSON.stringify({ environment: 'staging', description: 'demo run' }),
      });
      assert.equal(created.status, 201);
      runId = ((await created.json()) as { id: string }).id;
      assert.equal(first.output().includes(requester), false, 'tokens are never printed');
    } finally {
      first.child.kill('SIGTERM');
    }
    assert.equal(await first.exited, 0, `clean exit on SIGTERM:\n${first.output()}`);
    assert.equal(await portOpen(port), false, 'HTTP server closed');
    assert.equal(await portOpen(pgPort), false, 'embedded PostgreSQL stopped');
    assert.ok(existsSync(join(dataDir, 'pg', 'PG_VERSION')), 'data kept under DATA_DIR');

    const second = start(env());
    try {
      await waitForHealth(base, second, 30_000);
      const tokens = JSON.parse(await readFile(join(dataDir, 'demo-tokens.json'), 'utf8')) as Array<{ roles: string[]; token: string }>;
      const viewer = tokens.find((t) => t.roles.includes('viewer'))!.token;
      const res = await fetch(`${base}/v1/runs/${runId}`, { headers: { authorization: `Bearer ${viewer}` } });
      assert.equal(res.status, 200, 'the run created by the first start is still there');
    } finally {
      second.child.kill('SIGTERM');
    }
    assert.equal(await second.exited, 0);
  });
});

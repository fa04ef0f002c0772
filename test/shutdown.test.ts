// Ctrl-C in a terminal sends SIGINT to the whole foreground process group.
// `node dist/src/server.js` with the embedded demo must then shut down in
// order (HTTP server, background work, embedded PostgreSQL last), without the
// embedded server dying under it first (57P01 admin shutdown, "connection
// failed"), and exit 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT } from '../database/paths.js';
import { freePort } from './support/net.js';

const SERVER = join(PROJECT_ROOT, 'dist/src/server.js');

let dataDir: string;
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sf-shutdown-'));
});
after(() => rm(dataDir, { recursive: true, force: true }));

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('SIGINT to the process group of node dist/src/server.js: ordered shutdown, no connection errors, exit 0', async () => {
  const port = await freePort();
  const pgPort = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), EMBEDDED_PG_PORT: String(pgPort), DATA_DIR: dataDir, LOG_LEVEL: 'info' };
  for (const key of ['DATABASE_URL', 'STAGING_DATABASE_URL', 'PRODUCTION_DATABASE_URL', 'AUTH_TOKENS', 'AUTH_TOKENS_FILE', 'MIGRATION_CONFIG', 'TEST_DATABASE_URL']) delete env[key];
  // detached: the server leads a process group of its own, as a shell job in a terminal does.
  const server = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  let postmasterPid: number | undefined;
  try {
    const started = Date.now();
    for (;;) {
      assert.equal(server.exitCode, null, `the server exited early:\n${output}`);
      assert.ok(Date.now() - started < 60_000, `no /healthz within 60 s:\n${output}`);
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    postmasterPid = Number((await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    assert.ok(alive(postmasterPid), 'the embedded server runs');
    // The control database is in use, and background work (scheduler ticks, notifier, ETL worker) runs.
    const tokens = JSON.parse(await readFile(join(dataDir, 'demo-tokens.json'), 'utf8')) as Array<{ roles: string[]; token: string }>;
    const viewer = tokens.find((t) => t.roles.includes('viewer'))!.token;
    assert.equal((await fetch(`http://127.0.0.1:${port}/v1/runs`, { headers: { authorization: `Bearer ${viewer}` } })).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
  } catch (err) {
    try {
      process.kill(-server.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
    throw err;
  }

  process.kill(-server.pid!, 'SIGINT');
  const code = await exited;
  assert.equal(code, 0, `exit code after SIGINT:\n${output}`);
  assert.doesNotMatch(output, /57P01|connection failed|terminating connection due to administrator command|Connection terminated/i, output);

  const messages = output.split('\n').flatMap((line) => {
    try {
      return [(JSON.parse(line) as { msg?: string }).msg ?? ''];
    } catch {
      return [];
    }
  });
  const at = (msg: string) => {
    const i = messages.indexOf(msg);
    assert.ok(i >= 0, `logged "${msg}":\n${output}`);
    return i;
  };
  const shuttingDown = at('shutting down');
  const httpClosed = at('HTTP server closed');
  const backgroundStopped = at('background work stopped');
  const embeddedStopped = at('embedded PostgreSQL stopped');
  assert.ok(shuttingDown < httpClosed && httpClosed < backgroundStopped && backgroundStopped < embeddedStopped,
    `order: shutting down ${shuttingDown}, HTTP closed ${httpClosed}, background stopped ${backgroundStopped}, embedded stopped ${embeddedStopped}`);

  assert.equal(await portOpen(port), false, 'HTTP port closed');
  assert.equal(await portOpen(pgPort), false, 'embedded PostgreSQL port closed');
  assert.equal(alive(postmasterPid!), false, 'the embedded server process is gone');
});

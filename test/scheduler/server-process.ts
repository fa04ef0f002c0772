// A real service process (`node dist/src/server.js`) for the multi-replica and
// crash tests: the same binary operators run, on its own port.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../database/paths.js';
import { freePort } from '../support/net.js';

export interface ServerProcess {
  name: string;
  port: number;
  base: string;
  child: ChildProcess;
  /** stdout and stderr so far (logs, for failure messages). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<string>;
  /** SIGTERM and wait (graceful close). */
  stop(): Promise<string>;
}

export { freePort };

/** Starts the server with exactly these variables (plus PATH/HOME) and waits until it listens. */
export async function startServer(name: string, env: Record<string, string>, timeoutMs = 30_000): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/src/server.js')], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => { output += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { output += b.toString(); });
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? String(code))));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const check = () => {
      if (output.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.stdout!.on('data', check);
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${how}) before listening:\n${output}`));
    });
  });
  return {
    name,
    port,
    base: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A JSON request to a server process as the caller holding `bearerToken`. */
export async function callServer(server: ServerProcess, method: string, path: string, bearerToken: string, body?: object): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearerToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** The callers of the server-process tests (AUTH_TOKENS of serverSetup). */
export const SERVER_TOKENS = [
  { subject: 'alice', roles: ['requester'], token: 'server-alice-0123456789abcdef' },
  { subject: 'bob', roles: ['engineering'], token: 'server-bob-0123456789abcdef' },
  { subject: 'vic', roles: ['viewer'], token: 'server-vic-0123456789abcdef' },
  { subject: 'olga', roles: ['operator'], token: 'server-olga-0123456789abcdef' },
  { subject: 'carol', roles: ['sre'], token: 'server-carol-0123456789abcdef' },
];
export const serverToken = (subject: string): string => SERVER_TOKENS.find((x) => x.subject === subject)!.token;

/** An environment of these tests: one approval of any kind, pg_dump backups under `dir`, no smoke ETL, no watch. */
export function testEnvironment(name: string, migrationsDir: string, dir: string, extra: object = {}): object {
  return {
    databaseUrlEnv: `${name.toUpperCase()}_DATABASE_URL`, migrationsDir, approvals: { required: ['any'] },
    backup: { method: 'pg_dump', dir: join(dir, 'backups') }, verify: { smokeEtl: false, watchMinutes: 0 },
    ...extra,
  };
}

/**
 * Writes `dir`/migration-config.js with these environments and returns the
 * variables a server process runs with: the control database, that config,
 * SERVER_TOKENS, a ticking scheduler (1 s), no ETL worker, and each
 * environment's target URL (as <NAME>_DATABASE_URL).
 */
export async function serverSetup(dir: string, controlUrl: string, environments: Record<string, object>, targetUrls: Record<string, string>): Promise<Record<string, string>> {
  await writeFile(join(dir, 'migration-config.js'), `export default ${JSON.stringify({ environments })};\n`);
  return {
    DATABASE_URL: controlUrl,
    MIGRATION_CONFIG: join(dir, 'migration-config.js'),
    DATA_DIR: join(dir, 'data'),
    AUTH_TOKENS: JSON.stringify(SERVER_TOKENS),
    SCHEDULER: 'on',
    SCHEDULER_TICK_SECONDS: '1',
    ETL_WORKER: 'off',
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(Object.entries(targetUrls).map(([name, url]) => [`${name.toUpperCase()}_DATABASE_URL`, url])),
  };
}

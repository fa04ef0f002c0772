import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../../database/paths.js';
import { parseAuthTokens, type TokenEntry } from './auth-tokens.js';
import { ConfigError } from '../../services/environments/config-error.js';
import { parseMigrationConfig, type EnvironmentConfig } from '../../services/environments/model.js';

export { ConfigError } from '../../services/environments/config-error.js';
export type { Role, TokenEntry } from './auth-tokens.js';
export type { EnvironmentConfig } from '../../services/environments/model.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AppConfig {
  port: number;
  host: string;
  /** Control database; undefined means "start an embedded PostgreSQL". */
  databaseUrl: string | undefined;
  preflightDatabaseUrl: string | undefined;
  logLevel: LogLevel;
  authTokens: TokenEntry[];
  metricsToken: string | undefined;
  migrationConfigPath: string;
  dataDir: string;
  etlWorker: boolean | undefined;
  scheduler: boolean;
  /** Seconds between scheduler ticks (SCHEDULER_TICK_SECONDS, a divisor of 60 so ticks are evenly spaced). */
  schedulerTickSeconds: number;
  /** Run backfill jobs in this process (BACKFILLS, on by default; the API works either way). */
  backfills: boolean;
  /** How long a backfill executor's claim on a job holds without a batch or heartbeat (BACKFILL_LEASE_SECONDS). */
  backfillLeaseSeconds: number;
  /**
   * How long a replica's claim on an in-flight run (applying, verifying,
   * monitoring, rolling_back, restoring) holds without a heartbeat
   * (APPLY_LEASE_SECONDS); after a crash another replica reconciles the run once it lapses.
   */
  applyLeaseSeconds: number;
  embeddedPgPort: number;
  environments: Record<string, EnvironmentConfig>;
  /** Target database URLs by environment name, read from each environment's `databaseUrlEnv`. */
  targetUrls: Record<string, string | undefined>;
  /** Webhook URLs by the name of the variable holding them (each environment's `notify[].urlEnv`). */
  notifyUrls: Record<string, string>;
  notifier: NotifierSettings;
  eventStreams: EventStreamSettings;
}

export interface EventStreamSettings {
  /** Open event streams one replica serves at once; 0 turns streaming off (EVENT_STREAMS_MAX). */
  max: number;
  /** Open event streams per subject (EVENT_STREAMS_PER_SUBJECT). */
  perSubject: number;
  /** Bytes of events one stream may hold back for a slow reader before it is dropped (EVENT_STREAM_BUFFER_KB). */
  bufferBytes: number;
  /** Seconds between heartbeat comments on an idle stream (EVENT_STREAM_HEARTBEAT_SECONDS). */
  heartbeatMs: number;
  /** How often a replica reads new audit events from the control database while a stream is open (EVENTS_POLL_MS). */
  pollMs: number;
}

export interface NotifierSettings {
  /** How often the notifier looks for new events and due retries (NOTIFY_POLL_MS). */
  pollMs: number;
  /** Attempts per message before it is given up and recorded as failed (NOTIFY_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** First retry delay; each further retry doubles it, up to 5 minutes (NOTIFY_RETRY_BASE_MS). */
  retryBaseMs: number;
  /** One POST's time limit (NOTIFY_TIMEOUT_MS). */
  timeoutMs: number;
}

type Env = Record<string, string | undefined>;

function present(env: Env, key: string): string | undefined {
  const value = env[key];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function port(env: Env, key: string, fallback: number): number {
  const raw = present(env, key);
  if (raw === undefined) return fallback;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) throw new ConfigError(key, `must be a port number from 0 to 65535, got "${raw}"`);
  return Number(raw);
}

function flag(env: Env, key: string): boolean | undefined {
  const raw = present(env, key);
  if (raw === undefined) return undefined;
  const value = raw.toLowerCase();
  if (['on', 'true', '1'].includes(value)) return true;
  if (['off', 'false', '0'].includes(value)) return false;
  throw new ConfigError(key, `must be on|off (or true|false|1|0), got "${raw}"`);
}

function integer(env: Env, key: string, fallback: number, min: number, max: number): number {
  const raw = present(env, key);
  if (raw === undefined) return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

/** A webhook URL named by `key`; validated without ever echoing it (the URL is the secret). */
function webhookUrl(env: Env, key: string, usedBy: string): string {
  const raw = present(env, key);
  if (raw === undefined) throw new ConfigError(key, `is not set (${usedBy} names it as a webhook URL)`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(key, `is not a valid URL (${usedBy} names it as a webhook URL)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(key, 'must be an http:// or https:// URL');
  return raw;
}

export const TICK_SECONDS = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] as const;

function tickSeconds(env: Env, key: string, fallback: number): number {
  const raw = present(env, key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d{1,2}$/.test(raw) || !(TICK_SECONDS as readonly number[]).includes(value)) {
    throw new ConfigError(key, `must be one of ${TICK_SECONDS.join(', ')} seconds (a divisor of 60, so ticks are evenly spaced), got "${raw}"`);
  }
  return value;
}

/** Validates a postgres URL without ever echoing it (it may hold a password). */
export function postgresUrl(env: Env, key: string): string | undefined {
  const raw = present(env, key);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(key, 'is not a valid URL (expected postgres://user:password@host:port/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(key, 'must start with postgres:// or postgresql://');
  }
  if (url.pathname.length <= 1) throw new ConfigError(key, 'must name a database (postgres://host:port/database)');
  return raw;
}

async function loadMigrationConfigFile(path: string): Promise<unknown> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' ? 'file not found' : (err as Error).message;
    throw new ConfigError('MIGRATION_CONFIG', `cannot load ${path}: ${reason}`);
  }
  if (module.default === undefined) throw new ConfigError('MIGRATION_CONFIG', `${path} has no default export`);
  return module.default;
}

function resolveFrom(base: string, path: string): string {
  return isAbsolute(path) ? path : resolve(base, path);
}

/** Reads and validates every service setting; throws ConfigError naming the first bad key. */
export interface LoadOptions {
  /** false: tools that never notify (the local preflight script) neither need nor read webhook URLs. */
  notifications?: boolean;
}

export async function loadConfig(env: Env = process.env, cwd: string = process.cwd(), opts: LoadOptions = {}): Promise<AppConfig> {
  const logLevel = (present(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);

  const tokensJson = present(env, 'AUTH_TOKENS');
  const tokensFile = present(env, 'AUTH_TOKENS_FILE');
  if (tokensJson && tokensFile) throw new ConfigError('AUTH_TOKENS_FILE', 'set either AUTH_TOKENS or AUTH_TOKENS_FILE, not both');
  let authTokens: TokenEntry[] = [];
  if (tokensJson) authTokens = parseAuthTokens(tokensJson, 'AUTH_TOKENS');
  if (tokensFile) {
    let text: string;
    try {
      text = await readFile(resolveFrom(cwd, tokensFile), 'utf8');
    } catch (err) {
      throw new ConfigError('AUTH_TOKENS_FILE', `cannot read ${tokensFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    authTokens = parseAuthTokens(text, 'AUTH_TOKENS_FILE');
  }

  const host = present(env, 'HOST') ?? '127.0.0.1';
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw new ConfigError('HOST', `"${host}" is not a host name or address`);

  const migrationConfigPath = resolveFrom(cwd, present(env, 'MIGRATION_CONFIG') ?? resolve(PROJECT_ROOT, 'database/migration-config.js'));
  const environments = parseMigrationConfig(await loadMigrationConfigFile(migrationConfigPath), PROJECT_ROOT);
  const targetUrls: Record<string, string | undefined> = {};
  const notifyUrls: Record<string, string> = {};
  for (const [name, environment] of Object.entries(environments)) {
    targetUrls[name] = postgresUrl(env, environment.databaseUrlEnv);
    if (opts.notifications === false) environment.notify = [];
    environment.notify.forEach((target, i) => {
      notifyUrls[target.urlEnv] ??= webhookUrl(env, target.urlEnv, `environments.${name}.notify[${i}].urlEnv`);
    });
  }

  const metricsToken = present(env, 'METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16) throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters');

  return {
    port: port(env, 'PORT', 3000),
    host,
    databaseUrl: postgresUrl(env, 'DATABASE_URL'),
    preflightDatabaseUrl: postgresUrl(env, 'PREFLIGHT_DATABASE_URL'),
    logLevel: logLevel as LogLevel,
    authTokens,
    metricsToken,
    migrationConfigPath,
    dataDir: resolveFrom(cwd, present(env, 'DATA_DIR') ?? resolve(PROJECT_ROOT, '.data')),
    etlWorker: flag(env, 'ETL_WORKER'),
    scheduler: flag(env, 'SCHEDULER') ?? true,
    schedulerTickSeconds: tickSeconds(env, 'SCHEDULER_TICK_SECONDS', 5),
    backfills: flag(env, 'BACKFILLS') ?? true,
    backfillLeaseSeconds: integer(env, 'BACKFILL_LEASE_SECONDS', 30, 2, 3600),
    applyLeaseSeconds: integer(env, 'APPLY_LEASE_SECONDS', 30, 2, 3600),
    embeddedPgPort: port(env, 'EMBEDDED_PG_PORT', 54329),
    environments,
    targetUrls,
    notifyUrls,
    notifier: {
      pollMs: integer(env, 'NOTIFY_POLL_MS', 1000, 10, 60_000),
      maxAttempts: integer(env, 'NOTIFY_MAX_ATTEMPTS', 8, 1, 100),
      retryBaseMs: integer(env, 'NOTIFY_RETRY_BASE_MS', 2000, 1, 300_000),
      timeoutMs: integer(env, 'NOTIFY_TIMEOUT_MS', 5000, 100, 60_000),
    },
    eventStreams: {
      max: integer(env, 'EVENT_STREAMS_MAX', 200, 0, 100_000),
      perSubject: integer(env, 'EVENT_STREAMS_PER_SUBJECT', 20, 1, 100_000),
      bufferBytes: integer(env, 'EVENT_STREAM_BUFFER_KB', 1024, 16, 1_048_576) * 1024,
      heartbeatMs: integer(env, 'EVENT_STREAM_HEARTBEAT_SECONDS', 15, 1, 300) * 1000,
      pollMs: integer(env, 'EVENTS_POLL_MS', 500, 20, 60_000),
    },
  };
}

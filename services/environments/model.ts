import { isAbsolute, resolve } from 'node:path';
import { validate as validateCron } from 'node-cron';
import { RUN_STATUSES, type RunStatus } from '../runs/state-machine.js';
import { checkPromotionOrder, parseApplyPolicy, parsePromotionRule, type ApplyPolicy, type PromotionRule } from './apply-policy.js';
import { parseLintSettings, type LintSettings } from './lint-settings.js';
import { ConfigError } from './config-error.js';
import { parsePreflightSettings, type PreflightSettings } from './preflight-settings.js';

export const APPROVAL_SLOTS = ['any', 'engineering', 'sre'] as const;
export type ApprovalSlot = (typeof APPROVAL_SLOTS)[number];

export interface WindowConfig {
  cron: string;
  durationMinutes: number;
  timezone: string;
}
export interface FreezeConfig {
  from: Date;
  to: Date;
  reason: string;
}
export type BackupConfig =
  /**
   * dir: absolute, or relative to DATA_DIR (backups belong to the deployment,
   * not to the read-only application directory); null = DATA_DIR/backups.
   * lockWaitTimeoutMs: how long pg_dump waits for each table's ACCESS SHARE
   * lock (--lock-wait-timeout) before the backup, and so the apply, fails
   * instead of queueing behind a session that holds an exclusive lock.
   */
  | { method: 'pg_dump'; dir: string | null; lockWaitTimeoutMs: number }
  /** Commands run with /bin/sh; createCommand prints the snapshot id as its last line. */
  | { method: 'external'; createCommand: string; verifyCommand: string; restoreCommand: string | null };
export type WorkerPauseConfig =
  | { method: 'sql' }
  /** replicasCommand (optional) prints the current replica count, recorded and handed to resume. */
  | { method: 'command'; pause: string; resume: string; replicasCommand: string | null }
  | { method: 'http'; pauseUrl: string; resumeUrl: string; tokenEnv: string | null };
export interface WorkersConfig {
  pause: WorkerPauseConfig;
  /** Resume workers after a failed apply; off by default (the runbook keeps them stopped). */
  resumeOnFailure: boolean;
  /** Resume workers after a failure where nothing landed on the target (default on): there is nothing to protect them from. */
  resumeWhenNothingLanded: boolean;
  /** How long pausing may take (e.g. waiting for in-flight snapshots). */
  pauseTimeoutMs: number;
}
export interface VerifyConfig {
  tables: string[];
  indexes: string[];
  /**
   * The runbook's smoke ETL (rehearsal copy and verification). 'auto' (the
   * default): where the StarForge ETL tables exist, else reported as not
   * configured; true: required (missing tables are a warning); false: never.
   */
  smokeEtl: boolean | 'auto';
  watchMinutes: number;
  degradeFactor: number;
  /** The fewest new ETL processing errors that can make a run degraded, whatever the ratio. */
  degradeMinFailures: number;
  /** How long past the watch's end the verdict query is retried while the target is unreachable (minutes). */
  watchRetryMinutes: number;
}
export interface NotifyTarget {
  /** slack: `{"text": ...}` (Slack incoming webhooks and compatibles); webhook: a JSON body with the event and run. */
  kind: 'slack' | 'webhook';
  /** The environment variable holding the URL: webhook URLs are secrets and never live in the config file. */
  urlEnv: string;
  /** Run statuses announced to this target. */
  events: RunStatus[];
}

/** What a target hears about when its config lists no `events`. */
export const DEFAULT_NOTIFY_EVENTS: readonly RunStatus[] = [
  'created', 'awaiting_approval', 'preflight_failed', 'rejected', 'approved', 'scheduled', 'applying',
  'succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted', 'cancelled', 'rolled_back', 'restored',
];

export type { PreflightDataMode, PreflightSettings } from './preflight-settings.js';

export interface EtlSettings {
  /** Snapshots claimed per batch transaction. */
  batchSize: number;
  /** Attempts before a snapshot that keeps failing (not an invalid one) is given up. */
  maxAttempts: number;
  /** Idle poll interval of the in-process worker. */
  pollIntervalMs: number;
}

export interface EnvironmentConfig {
  name: string;
  databaseUrlEnv: string;
  migrationsDir: string;
  migrationsTable: string;
  migrationsSchema: string;
  approvals: { required: ApprovalSlot[] };
  windows: WindowConfig[];
  freezes: FreezeConfig[];
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  lockRetries: {
    attempts: number; baseDelayMs: number; maxDelayMs: number;
    /** Cancel (pg_cancel_backend, never terminate) a blocker whose statement has run longer than this; null = never. */
    cancelBlockersAfterMs: number | null;
  };
  backup: BackupConfig;
  workers: WorkersConfig;
  verify: VerifyConfig;
  notify: NotifyTarget[];
  preflight: PreflightSettings;
  etl: EtlSettings;
  /** Where this environment's backfill definitions live (absolute; default database/backfills). */
  backfillsDir: string;
  backfillPressure: BackfillPressure;
  /** Whether the last approval schedules the run (auto) or an operator confirms it (confirm). */
  apply: ApplyPolicy;
  /** Promotion: the environment a run of the same digest must have succeeded in first; null = none. */
  requires: PromotionRule | null;
  /** Rule levels for this environment's preflight lint (lint-settings.ts). */
  lint: LintSettings;
}

/** When a backfill backs off instead of running its next batch. */
export interface BackfillPressure {
  /** More active sessions than this on the target database (its own excluded). */
  maxActiveSessions: number;
  /** A streaming replica's replay lag above this (needs pg_monitor to be seen). */
  maxReplicaLagSeconds: number;
}

const ENV_NAME = /^[a-z][a-z0-9_-]{0,39}$/;
const ENV_VAR = /^[A-Z_][A-Z0-9_]*$/;
const SQL_NAME = /^[a-z_][a-z0-9_$]{0,62}$/;
const QUALIFIED_SQL_NAME = /^([a-z_][a-z0-9_$]{0,62}\.)?[a-z_][a-z0-9_$]{0,62}$/;

const ENVIRONMENT_KEYS = [
  'databaseUrlEnv', 'migrationsDir', 'migrationsTable', 'migrationsSchema', 'approvals', 'windows', 'freezes',
  'lockTimeoutMs', 'statementTimeoutMs', 'lockRetries', 'backup', 'workers', 'verify', 'notify', 'preflight', 'etl',
  'backfillsDir', 'backfillPressure', 'apply', 'requires', 'lint',
];

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function object(value: unknown, key: string, allowed?: string[]): Obj {
  if (!isObject(value)) throw new ConfigError(key, 'must be an object');
  if (allowed) {
    for (const field of Object.keys(value)) {
      if (!allowed.includes(field)) throw new ConfigError(`${key}.${field}`, `is not a known setting (known: ${allowed.join(', ')})`);
    }
  }
  return value;
}

function string(value: unknown, key: string, pattern?: RegExp, hint?: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(key, 'must be a non-empty string');
  if (pattern && !pattern.test(value)) throw new ConfigError(key, `"${value}" is not valid${hint ? ` (${hint})` : ''}`);
  return value;
}

function integer(value: unknown, key: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function minutes(value: unknown, key: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 24 * 60) {
    throw new ConfigError(key, 'must be a number of minutes from 0 to 1440 (fractions allowed)');
  }
  return value;
}

function boolean(value: unknown, key: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(key, 'must be true or false');
  return value;
}

function booleanOr(value: unknown, key: string, other: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(key, `must be true, false or ${other}`);
  return value;
}

function array<T>(value: unknown, key: string, item: (v: unknown, k: string) => T): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(key, 'must be an array');
  return value.map((v, i) => item(v, `${key}[${i}]`));
}

function timezone(value: unknown, key: string): string {
  const zone = string(value, key);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new ConfigError(key, `"${zone}" is not an IANA time zone`);
  }
  return zone;
}

function date(value: unknown, key: string): Date {
  const text = string(value, key);
  const parsed = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(parsed.getTime())) {
    throw new ConfigError(key, `"${text}" is not an ISO 8601 date-time`);
  }
  return parsed;
}

function httpUrl(value: unknown, key: string): string {
  const text = string(value, key);
  try {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return text;
  } catch {
    /* fall through */
  }
  throw new ConfigError(key, 'must be an http(s) URL');
}

function parseWindow(value: unknown, key: string): WindowConfig {
  const w = object(value, key, ['cron', 'durationMinutes', 'timezone']);
  const cron = string(w.cron, `${key}.cron`);
  if (!validateCron(cron)) throw new ConfigError(`${key}.cron`, `"${cron}" is not a valid cron expression`);
  return {
    cron,
    durationMinutes: integer(w.durationMinutes, `${key}.durationMinutes`, 1, 7 * 24 * 60),
    timezone: w.timezone === undefined ? 'UTC' : timezone(w.timezone, `${key}.timezone`),
  };
}

function parseFreeze(value: unknown, key: string): FreezeConfig {
  const f = object(value, key, ['from', 'to', 'reason']);
  const from = date(f.from, `${key}.from`);
  const to = date(f.to, `${key}.to`);
  if (to <= from) throw new ConfigError(`${key}.to`, 'must be after "from"');
  return { from, to, reason: f.reason === undefined ? 'freeze' : string(f.reason, `${key}.reason`) };
}

const DEFAULT_BACKUP_LOCK_WAIT_MS = 60_000;

function parseBackup(value: unknown, key: string): BackupConfig {
  if (value === undefined) return { method: 'pg_dump', dir: null, lockWaitTimeoutMs: DEFAULT_BACKUP_LOCK_WAIT_MS };
  const b = object(value, key);
  if (b.method === 'pg_dump') {
    object(value, key, ['method', 'dir', 'lockWaitTimeoutMs']);
    return {
      method: 'pg_dump',
      dir: b.dir === undefined ? null : string(b.dir, `${key}.dir`),
      lockWaitTimeoutMs: b.lockWaitTimeoutMs === undefined ? DEFAULT_BACKUP_LOCK_WAIT_MS : integer(b.lockWaitTimeoutMs, `${key}.lockWaitTimeoutMs`, 100, 3_600_000),
    };
  }
  if (b.method === 'external') {
    object(value, key, ['method', 'createCommand', 'verifyCommand', 'restoreCommand']);
    return {
      method: 'external',
      createCommand: string(b.createCommand, `${key}.createCommand`),
      verifyCommand: string(b.verifyCommand, `${key}.verifyCommand`),
      restoreCommand: b.restoreCommand === undefined ? null : string(b.restoreCommand, `${key}.restoreCommand`),
    };
  }
  throw new ConfigError(`${key}.method`, 'must be "pg_dump" or "external"');
}

function parseWorkerPause(value: unknown, key: string): WorkerPauseConfig {
  if (value === undefined) return { method: 'sql' };
  const p = object(value, key);
  switch (p.method) {
    case 'sql':
      object(value, key, ['method']);
      return { method: 'sql' };
    case 'command':
      object(value, key, ['method', 'pause', 'resume', 'replicasCommand']);
      return {
        method: 'command',
        pause: string(p.pause, `${key}.pause`),
        resume: string(p.resume, `${key}.resume`),
        replicasCommand: p.replicasCommand === undefined ? null : string(p.replicasCommand, `${key}.replicasCommand`),
      };
    case 'http':
      object(value, key, ['method', 'pauseUrl', 'resumeUrl', 'tokenEnv']);
      return {
        method: 'http',
        pauseUrl: httpUrl(p.pauseUrl, `${key}.pauseUrl`),
        resumeUrl: httpUrl(p.resumeUrl, `${key}.resumeUrl`),
        tokenEnv: p.tokenEnv === undefined ? null : string(p.tokenEnv, `${key}.tokenEnv`, ENV_VAR, 'an environment variable name'),
      };
    default:
      throw new ConfigError(`${key}.method`, 'must be "sql", "command" or "http"');
  }
}

function parseVerify(value: unknown, key: string): VerifyConfig {
  const v = value === undefined ? {} : object(value, key, ['tables', 'indexes', 'smokeEtl', 'watchMinutes', 'degradeFactor', 'degradeMinFailures', 'watchRetryMinutes']);
  const degradeMinFailures = v.degradeMinFailures === undefined ? 10 : v.degradeMinFailures;
  if (typeof degradeMinFailures !== 'number' || !Number.isInteger(degradeMinFailures) || degradeMinFailures < 1 || degradeMinFailures > 1_000_000) {
    throw new ConfigError(`${key}.degradeMinFailures`, 'must be an integer from 1 to 1000000');
  }
  const degradeFactor = v.degradeFactor === undefined ? 2 : v.degradeFactor;
  if (typeof degradeFactor !== 'number' || !(degradeFactor >= 1) || degradeFactor > 100) {
    throw new ConfigError(`${key}.degradeFactor`, 'must be a number from 1 to 100');
  }
  return {
    tables: array(v.tables, `${key}.tables`, (t, k) => string(t, k, QUALIFIED_SQL_NAME, 'a lower-case table name, optionally schema-qualified')),
    indexes: array(v.indexes, `${key}.indexes`, (t, k) => string(t, k, QUALIFIED_SQL_NAME, 'a lower-case index name, optionally schema-qualified')),
    smokeEtl: v.smokeEtl === undefined || v.smokeEtl === 'auto' ? 'auto' : booleanOr(v.smokeEtl, `${key}.smokeEtl`, "'auto'"),
    watchMinutes: v.watchMinutes === undefined ? 1 : minutes(v.watchMinutes, `${key}.watchMinutes`),
    degradeFactor,
    degradeMinFailures,
    watchRetryMinutes: v.watchRetryMinutes === undefined ? 2 : minutes(v.watchRetryMinutes, `${key}.watchRetryMinutes`),
  };
}

function parseNotify(value: unknown, key: string): NotifyTarget {
  const n = object(value, key, ['kind', 'urlEnv', 'events']);
  if (n.kind !== 'slack' && n.kind !== 'webhook') throw new ConfigError(`${key}.kind`, 'must be "slack" or "webhook"');
  const events = n.events === undefined
    ? [...DEFAULT_NOTIFY_EVENTS]
    : array(n.events, `${key}.events`, (e, k) => {
        if (!RUN_STATUSES.includes(e as RunStatus)) throw new ConfigError(k, `must be a run status (${RUN_STATUSES.join(', ')})`);
        return e as RunStatus;
      });
  if (events.length === 0) throw new ConfigError(`${key}.events`, 'lists no status; remove the target instead');
  return { kind: n.kind, urlEnv: string(n.urlEnv, `${key}.urlEnv`, ENV_VAR, 'an environment variable name'), events };
}

function parseEnvironment(name: string, value: unknown, projectRoot: string): EnvironmentConfig {
  const key = `environments.${name}`;
  if (!ENV_NAME.test(name)) throw new ConfigError(key, 'environment names are lower-case letters, digits, "_" or "-" (max 40)');
  const e = object(value, key, ENVIRONMENT_KEYS);
  const migrationsDir = e.migrationsDir === undefined ? 'database/migrations' : string(e.migrationsDir, `${key}.migrationsDir`);
  const approvals = e.approvals === undefined ? undefined : object(e.approvals, `${key}.approvals`, ['required']);
  const required = approvals?.required === undefined
    ? (name === 'production' ? ['engineering', 'sre'] as ApprovalSlot[] : ['any'] as ApprovalSlot[])
    : array(approvals.required, `${key}.approvals.required`, (r, k) => {
        if (!APPROVAL_SLOTS.includes(r as ApprovalSlot)) throw new ConfigError(k, `must be one of ${APPROVAL_SLOTS.join(', ')}`);
        return r as ApprovalSlot;
      });
  if (required.length === 0) throw new ConfigError(`${key}.approvals.required`, 'needs at least one approval');
  const retries = e.lockRetries === undefined ? {} : object(e.lockRetries, `${key}.lockRetries`, ['attempts', 'baseDelayMs', 'maxDelayMs', 'cancelBlockersAfterMs']);
  const lockRetries = {
    attempts: retries.attempts === undefined ? 10 : integer(retries.attempts, `${key}.lockRetries.attempts`, 1, 1000),
    baseDelayMs: retries.baseDelayMs === undefined ? 500 : integer(retries.baseDelayMs, `${key}.lockRetries.baseDelayMs`, 1, 600_000),
    maxDelayMs: retries.maxDelayMs === undefined ? 30_000 : integer(retries.maxDelayMs, `${key}.lockRetries.maxDelayMs`, 1, 3_600_000),
    cancelBlockersAfterMs: retries.cancelBlockersAfterMs === undefined || retries.cancelBlockersAfterMs === null
      ? null : integer(retries.cancelBlockersAfterMs, `${key}.lockRetries.cancelBlockersAfterMs`, 0, 86_400_000),
  };
  if (lockRetries.maxDelayMs < lockRetries.baseDelayMs) throw new ConfigError(`${key}.lockRetries.maxDelayMs`, 'must be at least baseDelayMs');
  const workers = e.workers === undefined ? {} : object(e.workers, `${key}.workers`, ['pause', 'resumeOnFailure', 'resumeWhenNothingLanded', 'pauseTimeoutMs']);
  const etl = e.etl === undefined ? {} : object(e.etl, `${key}.etl`, ['batchSize', 'maxAttempts', 'pollIntervalMs']);
  const backfillsDir = e.backfillsDir === undefined ? 'database/backfills' : string(e.backfillsDir, `${key}.backfillsDir`);
  const pressure = e.backfillPressure === undefined ? {} : object(e.backfillPressure, `${key}.backfillPressure`, ['maxActiveSessions', 'maxReplicaLagSeconds']);
  return {
    name,
    databaseUrlEnv: string(e.databaseUrlEnv, `${key}.databaseUrlEnv`, ENV_VAR, 'an environment variable name such as PRODUCTION_DATABASE_URL'),
    migrationsDir: isAbsolute(migrationsDir) ? migrationsDir : resolve(projectRoot, migrationsDir),
    migrationsTable: e.migrationsTable === undefined ? 'pgmigrations' : string(e.migrationsTable, `${key}.migrationsTable`, SQL_NAME, 'a lower-case table name'),
    migrationsSchema: e.migrationsSchema === undefined ? 'public' : string(e.migrationsSchema, `${key}.migrationsSchema`, SQL_NAME, 'a lower-case schema name'),
    approvals: { required },
    windows: array(e.windows, `${key}.windows`, parseWindow),
    freezes: array(e.freezes, `${key}.freezes`, parseFreeze),
    lockTimeoutMs: e.lockTimeoutMs === undefined ? 2000 : integer(e.lockTimeoutMs, `${key}.lockTimeoutMs`, 1, 600_000),
    statementTimeoutMs: e.statementTimeoutMs === undefined ? 600_000 : integer(e.statementTimeoutMs, `${key}.statementTimeoutMs`, 1, 86_400_000),
    lockRetries,
    backup: parseBackup(e.backup, `${key}.backup`),
    workers: {
      pause: parseWorkerPause(workers.pause, `${key}.workers.pause`),
      resumeOnFailure: workers.resumeOnFailure === undefined ? false : boolean(workers.resumeOnFailure, `${key}.workers.resumeOnFailure`),
      resumeWhenNothingLanded: workers.resumeWhenNothingLanded === undefined ? true : boolean(workers.resumeWhenNothingLanded, `${key}.workers.resumeWhenNothingLanded`),
      pauseTimeoutMs: workers.pauseTimeoutMs === undefined ? 120_000 : integer(workers.pauseTimeoutMs, `${key}.workers.pauseTimeoutMs`, 100, 3_600_000),
    },
    verify: parseVerify(e.verify, `${key}.verify`),
    notify: array(e.notify, `${key}.notify`, parseNotify),
    preflight: parsePreflightSettings(e.preflight, `${key}.preflight`),
    etl: {
      batchSize: etl.batchSize === undefined ? 200 : integer(etl.batchSize, `${key}.etl.batchSize`, 1, 10_000),
      maxAttempts: etl.maxAttempts === undefined ? 5 : integer(etl.maxAttempts, `${key}.etl.maxAttempts`, 1, 100),
      pollIntervalMs: etl.pollIntervalMs === undefined ? 1000 : integer(etl.pollIntervalMs, `${key}.etl.pollIntervalMs`, 10, 600_000),
    },
    backfillsDir: isAbsolute(backfillsDir) ? backfillsDir : resolve(projectRoot, backfillsDir),
    backfillPressure: {
      maxActiveSessions: pressure.maxActiveSessions === undefined ? 50 : integer(pressure.maxActiveSessions, `${key}.backfillPressure.maxActiveSessions`, 1, 100_000),
      maxReplicaLagSeconds: pressure.maxReplicaLagSeconds === undefined ? 10 : integer(pressure.maxReplicaLagSeconds, `${key}.backfillPressure.maxReplicaLagSeconds`, 1, 86_400),
    },
    apply: parseApplyPolicy(e.apply, `${key}.apply`, name, required),
    requires: parsePromotionRule(e.requires, `${key}.requires`),
    lint: parseLintSettings(e.lint, `${key}.lint`),
  };
}

/**
 * Validates the object exported by migration-config.js. Relative code paths
 * (migrationsDir, backfillsDir) resolve from `projectRoot`; a relative
 * backup.dir is kept relative and resolves under DATA_DIR when used.
 */
export function parseMigrationConfig(value: unknown, projectRoot: string): Record<string, EnvironmentConfig> {
  const root = object(value, 'migration config', ['environments']);
  const environments = object(root.environments, 'environments');
  const names = Object.keys(environments);
  if (names.length === 0) throw new ConfigError('environments', 'must define at least one environment');
  const parsed: Record<string, EnvironmentConfig> = {};
  const urlEnvs = new Map<string, string>();
  for (const name of names) {
    const env = parseEnvironment(name, environments[name], projectRoot);
    const other = urlEnvs.get(env.databaseUrlEnv);
    if (other) throw new ConfigError(`environments.${name}.databaseUrlEnv`, `${env.databaseUrlEnv} is already used by environment "${other}"`);
    urlEnvs.set(env.databaseUrlEnv, name);
    parsed[name] = env;
  }
  checkPromotionOrder(parsed);
  return parsed;
}

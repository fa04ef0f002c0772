import { isAbsolute, resolve } from 'node:path';
import { checkPromotionOrder, parseApplyPolicy, parsePromotionRule, type ApplyPolicy, type PromotionRule } from './apply-policy.js';
import { parseBackup, type BackupConfig } from './backup-settings.js';
import { array, ENV_VAR, integer, object, SQL_NAME, string } from './config-values.js';
import { parseLintSettings, type LintSettings } from './lint-settings.js';
import { ConfigError } from './config-error.js';
import { parseNotify, type NotifyTarget } from './notify-settings.js';
import { parsePreflightSettings, type PreflightSettings } from './preflight-settings.js';
import { parseVerify, type VerifyConfig } from './verify-settings.js';
import { parseFreeze, parseWindow, type FreezeConfig, type WindowConfig } from './windows-settings.js';
import { parseWorkers, WORKERS_KEYS, type WorkersConfig } from './workers-settings.js';

// The environment model: what migration-config.js may say about an
// environment, validated at start-up. Each section's settings and checks live
// in a file of their own beside this one; this one puts an environment together.

export const APPROVAL_SLOTS = ['any', 'engineering', 'sre'] as const;
export type ApprovalSlot = (typeof APPROVAL_SLOTS)[number];

export type { PreflightDataMode, PreflightSettings } from './preflight-settings.js';
export type { BackupConfig } from './backup-settings.js';
export { DEFAULT_NOTIFY_EVENTS, type NotifyTarget } from './notify-settings.js';
export type { VerifyConfig } from './verify-settings.js';
export type { FreezeConfig, WindowConfig } from './windows-settings.js';
export type { WorkerPauseConfig, WorkersConfig } from './workers-settings.js';

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

const ENVIRONMENT_KEYS = [
  'databaseUrlEnv', 'migrationsDir', 'migrationsTable', 'migrationsSchema', 'approvals', 'windows', 'freezes',
  'lockTimeoutMs', 'statementTimeoutMs', 'lockRetries', 'backup', 'workers', 'verify', 'notify', 'preflight', 'etl',
  'backfillsDir', 'backfillPressure', 'apply', 'requires', 'lint',
];

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
  const workers = e.workers === undefined ? {} : object(e.workers, `${key}.workers`, WORKERS_KEYS);
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
    workers: parseWorkers(workers, `${key}.workers`),
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

import { boolean, ENV_VAR, httpUrl, integer, object, string, type Obj } from './config-values.js';
import { ConfigError } from './config-error.js';

// An environment's `workers`: how the ETL workers are paused for an apply and when they are resumed.

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

export const WORKERS_KEYS = ['pause', 'resumeOnFailure', 'resumeWhenNothingLanded', 'pauseTimeoutMs'];

/** `workers`, its keys already checked against WORKERS_KEYS (where the environment's other keys are). */
export function parseWorkers(workers: Obj, key: string): WorkersConfig {
  return {
    pause: parseWorkerPause(workers.pause, `${key}.pause`),
    resumeOnFailure: workers.resumeOnFailure === undefined ? false : boolean(workers.resumeOnFailure, `${key}.resumeOnFailure`),
    resumeWhenNothingLanded: workers.resumeWhenNothingLanded === undefined ? true : boolean(workers.resumeWhenNothingLanded, `${key}.resumeWhenNothingLanded`),
    pauseTimeoutMs: workers.pauseTimeoutMs === undefined ? 120_000 : integer(workers.pauseTimeoutMs, `${key}.pauseTimeoutMs`, 100, 3_600_000),
  };
}

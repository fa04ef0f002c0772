import { performance } from 'node:perf_hooks';
import { isConnectionError, scrubSecrets } from '../../database/pg-errors.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { freezeAt, nextWindows, openWindowAt } from '../windows/windows.js';

// Pure decisions of the executor (no I/O): how big the next batch is, how long
// to wait for the rate limit, whether the target is under pressure, whether a
// window allows work, and what kind of error a failed batch hit.

/**
 * With a rate limit, a batch holds at most a fifth of a second's worth of
 * rows, so the pace is even (no burst of a whole second's rows followed by
 * a long sleep) and the rate holds over short spans too.
 */
export function effectiveBatchSize(batchSize: number, maxRowsPerSecond: number | null): number {
  if (!maxRowsPerSecond) return batchSize;
  return Math.max(1, Math.min(batchSize, Math.ceil(maxRowsPerSecond / 5)));
}

/** Paces batches to `maxRowsPerSecond`: batch k may start once the rows before it fit the rate. */
export class Pacer {
  private started = performance.now();
  private rows = 0;

  constructor(private readonly maxRowsPerSecond: number | null, private readonly now: () => number = () => performance.now()) {
    this.started = now();
  }

  /** Start counting afresh (after a wait for pressure or a window, so no burst catches up on it). */
  reset(): void {
    this.started = this.now();
    this.rows = 0;
  }

  /** Counts rows a batch just processed. */
  add(rows: number): void {
    this.rows += rows;
  }

  /** Milliseconds to wait before the next batch (0 without a limit). */
  delayMs(): number {
    if (!this.maxRowsPerSecond) return 0;
    const due = this.started + (this.rows / this.maxRowsPerSecond) * 1000;
    return Math.max(0, due - this.now());
  }

  /** Rows per second since the last reset. */
  rate(): number | null {
    const seconds = (this.now() - this.started) / 1000;
    return seconds > 0.001 ? this.rows / seconds : null;
  }
}

export interface Pressure {
  active: number;
  lagSeconds: number | null;
}

/** Why the target counts as under pressure now, or null when work may go on. */
export function pressureReason(p: Pressure, env: Pick<EnvironmentConfig, 'backfillPressure'>): string | null {
  const limits = env.backfillPressure;
  if (p.active > limits.maxActiveSessions) {
    return `target under pressure: ${p.active} active sessions (more than ${limits.maxActiveSessions})`;
  }
  if (p.lagSeconds !== null && p.lagSeconds > limits.maxReplicaLagSeconds) {
    return `replica replay lag ${p.lagSeconds.toFixed(1)} s (more than ${limits.maxReplicaLagSeconds} s)`;
  }
  return null;
}

/** Back-off after the n-th consecutive failed attempt: 1 s doubling to 30 s. */
export function backoffMs(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, Math.min(attempt - 1, 5)));
}

/** Back-off while the target is under pressure: 0.5 s doubling to 5 s, so work resumes soon after it clears. */
export function pressureBackoffMs(attempt: number): number {
  return Math.min(5000, 500 * 2 ** Math.max(0, Math.min(attempt - 1, 4)));
}

export type WindowGate = { open: true } | { open: false; reason: string; retryInMs: number };

/**
 * A windowOnly job works only while one of the environment's maintenance
 * windows is open and no freeze is in force (no windows configured: any time
 * outside freezes, as for migrations). Outside, it is re-checked at the next
 * opening, and at least every minute (a config reload may change windows).
 */
export function windowGate(env: Pick<EnvironmentConfig, 'windows' | 'freezes'>, windowOnly: boolean, now: Date): WindowGate {
  if (!windowOnly) return { open: true };
  const freeze = freezeAt(env.freezes, now);
  if (freeze) {
    return { open: false, reason: `frozen until ${freeze.to.toISOString()} (${freeze.reason})`, retryInMs: clampRetry(freeze.to.getTime() - now.getTime()) };
  }
  if (env.windows.length === 0 || openWindowAt(env.windows, env.freezes, now)) return { open: true };
  const next = nextWindows(env.windows, env.freezes, now, 1)[0];
  return {
    open: false,
    reason: next ? `outside the maintenance windows (the next opens ${next.start.toISOString()})` : 'outside the maintenance windows (none ahead)',
    retryInMs: clampRetry(next ? next.start.getTime() - now.getTime() : 60_000),
  };
}

const clampRetry = (ms: number) => Math.max(1000, Math.min(60_000, ms));

// ------------------------------------------------------------------ errors

export type ErrorKind =
  /** The data of some row made the statement fail: isolate the row, record it, go on. */
  | 'row'
  /** Lock or statement timeout, serialization failure, deadlock: retry (smaller), record only if it persists. */
  | 'transient'
  /** The target cannot be reached: wait and retry the same batch. */
  | 'connection'
  /** The statement cannot work on any row (undefined column, permissions, ...): the job fails. */
  | 'fatal';

const ROW_CLASSES = ['22', '23', 'P0', '2F', '38', '39', '44'];
const TRANSIENT = new Set(['55P03', '57014', '40001', '40P01', '53100', '53200', '53400']);

export function classifyError(err: unknown): ErrorKind {
  if (isConnectionError(err)) return 'connection';
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return 'connection';
  if (TRANSIENT.has(code)) return 'transient';
  if (ROW_CLASSES.includes(code.slice(0, 2))) return 'row';
  return 'fatal';
}

/**
 * A short description of a database error for the job and failure rows, which
 * every role can read: the message and SQLSTATE only. PostgreSQL's DETAIL is
 * left out because it can quote the row ("Failing row contains (...)"), and any
 * connection string is scrubbed.
 */
export function describeError(err: unknown): { message: string; sqlstate: string | null } {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : null;
  const message = typeof e.message === 'string' ? e.message : String(err);
  return { message: scrubSecrets(message, []).slice(0, 1000), sqlstate: code };
}

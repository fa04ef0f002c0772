import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { exec, maybeOne, one } from '../../database/db.js';
import { describeConnectionError, scrubSecrets } from '../../database/pg-errors.js';
import { etlControlExists, readEtlControl, releaseBatchLockExclusive, setEtlPaused, tryBatchLockExclusive } from '../../database/sql/etl-control.js';
import type { EnvironmentConfig, WorkerPauseConfig } from '../environments/model.js';
import type { OnSpawn } from '../child-processes.js';
import { CommandError, runCommand } from '../shell.js';

export interface PauseState {
  method: 'sql' | 'command' | 'http';
  pausedAt: string;
  /** Replica count before the pause (command method with replicasCommand), handed to resume. */
  previousReplicas: number | null;
  note: string | null;
  /** sql method: who set etl_control.paused and why, so resume only lifts its own pause. */
  pausedBy?: string;
  pauseReason?: string;
  /** sql method, when the ETL was paused already: that pause (who and why), to put back after a restore. */
  previous?: { changedBy: string | null; reason: string | null };
}

/** A pause this work counts as its own (e.g. the apply's, that a backup carried into a restore). */
export interface OwnPause {
  pausedBy?: string;
  pauseReason?: string;
}

/** Pausing or resuming failed; the message carries no URL, password or token. */
export class WorkerPauseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerPauseError';
  }
}

export interface WorkerOptions {
  environment: EnvironmentConfig;
  targetUrl: string;
  runId: string;
  actor: string;
  reason: string;
  log: (line: string) => void;
  /** The target session's name (default starforge-pause); per run, so a reconciler can find it. */
  applicationName?: string;
  /** Told about each command started (its pid and group are recorded). */
  onSpawn?: OnSpawn;
  /** Earlier pauses of the same run: found set, they are lifted like this work's own. */
  adopt?: OwnPause[];
}

/** The note of a pause that found nothing to pause; resuming such a state does nothing. */
export const NO_ETL_CONTROL_NOTE = 'no etl_control table yet: no workers to pause';
/** What an apply or rollback report says when the sql method found no etl_control table. */
export const WORKERS_NOT_CONFIGURED = 'Workers: not configured (no etl_control table on the target when the work started): nothing was paused, nothing to resume.';

/**
 * The sql method on a target without etl_control: a project with no
 * StarForge ETL has no workers to pause, which is "not configured", not a pause.
 */
export function pauseNotConfigured(state: PauseState): boolean {
  return state.method === 'sql' && state.note === NO_ETL_CONTROL_NOTE;
}

/** Prefix of the note when workers were paused before the run: resume then leaves them paused. */
export const ALREADY_PAUSED_NOTE = 'already paused before this run';

const POLL_INTERVAL_MS = 50;

const elapsed = (started: number) => Math.round(performance.now() - started);

// ---------------------------------------------------------------- sql

async function connect(opts: WorkerOptions): Promise<pg.Client> {
  const timeoutMs = opts.environment.workers.pauseTimeoutMs;
  const client = new pg.Client({
    connectionString: opts.targetUrl,
    application_name: opts.applicationName ?? 'starforge-pause',
    connectionTimeoutMillis: Math.min(timeoutMs, 10_000),
    // Setting the flag must not queue behind some other writer of etl_control for longer than the pause may take.
    lock_timeout: timeoutMs,
    statement_timeout: timeoutMs,
  });
  // A connection dropped while idle must not crash the process; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    // pg has already closed the socket of a failed connect (end() could wait forever).
    throw new WorkerPauseError(`cannot connect to the target: ${describeConnectionError(err)}`);
  }
  return client;
}

async function withClient<T>(opts: WorkerOptions, what: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(opts);
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof WorkerPauseError) throw err;
    throw new WorkerPauseError(`${what} failed: ${safeMessage(err, opts)}`);
  } finally {
    // Ending the session also drops any advisory lock it might still hold.
    await client.end().catch(() => undefined);
  }
}

async function setPaused(client: pg.Client, paused: boolean, opts: WorkerOptions): Promise<void> {
  const updated = await exec(client, setEtlPaused(paused, opts.reason, opts.actor));
  // Workers expect the singleton row; without it there is no flag for them to read.
  if (updated !== 1) throw new WorkerPauseError('etl_control has no row: workers cannot see a pause flag');
}

/**
 * Polls for the exclusive batch lock: it is granted only once no worker holds
 * the shared one, i.e. no batch is in flight. Released at once: holding it
 * would only block workers from even starting (and seeing the flag).
 */
async function waitForBatches(client: pg.Client, deadline: number): Promise<boolean> {
  for (;;) {
    const { locked } = await one<{ locked: boolean }>(client, tryBatchLockExclusive());
    if (locked) {
      await exec(client, releaseBatchLockExclusive());
      return true;
    }
    if (performance.now() >= deadline) return false;
    await sleep(POLL_INTERVAL_MS);
  }
}

function safeMessage(err: unknown, opts: WorkerOptions): string {
  if (err instanceof WorkerPauseError) return err.message;
  return scrubSecrets(err instanceof Error ? err.message : String(err), [opts.targetUrl]);
}

async function pauseSql(opts: WorkerOptions): Promise<PauseState> {
  const timeoutMs = opts.environment.workers.pauseTimeoutMs;
  const started = performance.now();
  return withClient(opts, 'pausing ETL workers', async (client) => {
    const { exists } = await one<{ exists: boolean }>(client, etlControlExists());
    if (!exists) {
      opts.log('workers: not configured (no etl_control table on the target); nothing paused');
      return { method: 'sql', pausedAt: new Date().toISOString(), previousReplicas: null, note: NO_ETL_CONTROL_NOTE };
    }
    // Someone (an operator during an incident, say) paused workers already:
    // keep their flag and reason, and leave them paused when we are done.
    const current = await maybeOne<{ paused: boolean; reason: string | null; changed_by: string | null }>(client, readEtlControl());
    // An earlier attempt of this run paused it (and died): that pause is ours, not someone else's.
    const adopted = current?.paused === true && isAdopted(current, opts);
    const alreadyPaused = current?.paused === true && !adopted;
    if (adopted) opts.log(`workers are paused by an earlier attempt of this run (${current.changed_by ?? 'someone'}: ${current.reason ?? 'no reason given'}); taking that pause over`);
    if (alreadyPaused) {
      opts.log(`workers were already paused by ${current.changed_by ?? 'someone'} (${current.reason ?? 'no reason given'}); waiting for in-flight ETL batches`);
    } else {
      // Autocommit: workers must see the flag now, while we wait for their batches.
      await setPaused(client, true, opts);
      opts.log('set etl_control.paused; waiting for in-flight ETL batches to finish');
    }
    let drained: boolean;
    try {
      drained = await waitForBatches(client, started + timeoutMs);
    } catch (err) {
      if (!alreadyPaused) await unpause(client, opts);
      throw new WorkerPauseError(`waiting for ETL batches failed: ${safeMessage(err, opts)}`);
    }
    if (!drained) {
      // Half-paused is the worst state: the apply will not run, so let workers carry on.
      if (!alreadyPaused) await unpause(client, opts);
      throw new WorkerPauseError(`workers did not finish their batch within ${timeoutMs} ms${alreadyPaused ? '' : '; the pause flag was cleared again'}`);
    }
    opts.log(`workers paused: no ETL batch in flight (waited ${elapsed(started)} ms)`);
    const note = alreadyPaused ? `${ALREADY_PAUSED_NOTE} by ${current.changed_by ?? 'someone'}: ${current.reason ?? 'no reason given'}` : null;
    const previous = alreadyPaused ? { changedBy: current.changed_by, reason: current.reason } : undefined;
    return { method: 'sql', pausedAt: new Date().toISOString(), previousReplicas: null, note, pausedBy: opts.actor, pauseReason: opts.reason, previous };
  });
}

function isAdopted(current: { changed_by: string | null; reason: string | null }, opts: WorkerOptions): boolean {
  return (opts.adopt ?? []).some((p) => p.pausedBy !== undefined && p.pausedBy === current.changed_by && p.pauseReason === current.reason);
}

/** Best effort: when it fails the flag stays set, which the caller's error says. */
async function unpause(client: pg.Client, opts: WorkerOptions): Promise<void> {
  try {
    await setPaused(client, false, opts);
    opts.log('cleared etl_control.paused after the failed pause');
  } catch (err) {
    throw new WorkerPauseError(`pausing failed and clearing etl_control.paused failed too (${safeMessage(err, opts)}): clear it by hand`);
  }
}

async function resumeSql(state: PauseState, opts: WorkerOptions): Promise<ResumeOutcome> {
  if (state.note === NO_ETL_CONTROL_NOTE) {
    opts.log('nothing was paused (no etl_control table at pause time); nothing to resume');
    return 'not-configured';
  }
  if (state.note?.startsWith(ALREADY_PAUSED_NOTE)) {
    opts.log('workers were paused before this run; leaving them paused');
    return;
  }
  const lifted = await withClient(opts, 'clearing etl_control.paused', async (client) => {
    // A rollback's down migration (or a restore) may have removed etl_control with the pause flag in it:
    // no table, no workers to hold back, which is not a failure to resume.
    if (!(await one<{ exists: boolean }>(client, etlControlExists())).exists) return 'gone' as const;
    const current = await maybeOne<{ paused: boolean; reason: string | null; changed_by: string | null }>(client, readEtlControl());
    // Someone paused the ETL for their own reason meanwhile (an operator during the apply): theirs to lift.
    const ours = current?.changed_by === state.pausedBy && current?.reason === state.pauseReason;
    if (current?.paused && state.pausedBy !== undefined && !ours && !isAdopted(current, opts)) {
      opts.log(`leaving workers paused: ${current.changed_by ?? 'someone'} paused them meanwhile (${current.reason ?? 'no reason given'})`);
      return false;
    }
    await setPaused(client, false, opts);
    return true;
  });
  if (lifted === 'gone') {
    opts.log('no etl_control table any more (the work removed it): no workers to resume');
    return 'not-configured';
  }
  if (lifted) opts.log('cleared etl_control.paused: workers resume');
}

/** not-configured: the sql method found no etl_control table, so there were no workers to resume. */
export type ResumeOutcome = 'not-configured' | void;

// ---------------------------------------------------------------- command

type CommandPause = Extract<WorkerPauseConfig, { method: 'command' }>;

function commandEnv(opts: WorkerOptions): Record<string, string> {
  return { STARFORGE_ENVIRONMENT: opts.environment.name, STARFORGE_RUN_ID: opts.runId, STARFORGE_REASON: opts.reason };
}

async function run(what: string, command: string, env: Record<string, string>, opts: WorkerOptions): Promise<string> {
  const started = performance.now();
  opts.log(`running the ${what} command`);
  try {
    // Scaling workers needs no database access: the target's URL is not inherited.
    const { stdout } = await runCommand(command, {
      env, timeoutMs: opts.environment.workers.pauseTimeoutMs, secrets: [opts.targetUrl], unsetEnv: [opts.environment.databaseUrlEnv],
      onSpawn: opts.onSpawn, label: `workers ${what} command`,
    });
    opts.log(`${what} command finished in ${elapsed(started)} ms`);
    return stdout;
  } catch (err) {
    if (err instanceof CommandError) throw new WorkerPauseError(`${what} command failed: ${err.message}`);
    throw err;
  }
}

async function readReplicas(command: string, opts: WorkerOptions): Promise<number> {
  const stdout = await run('replicas', command, commandEnv(opts), opts);
  const last = stdout.split('\n').map((line) => line.trim()).filter((line) => line !== '').at(-1) ?? '';
  if (!/^\d{1,9}$/.test(last)) throw new WorkerPauseError('replicas command did not print a whole number of replicas as its last line');
  return Number(last);
}

async function pauseCommand(pause: CommandPause, opts: WorkerOptions): Promise<PauseState> {
  let previousReplicas: number | null = null;
  if (pause.replicasCommand) {
    previousReplicas = await readReplicas(pause.replicasCommand, opts);
    opts.log(`workers run ${previousReplicas} replica(s)`);
  }
  await run('pause', pause.pause, commandEnv(opts), opts);
  return { method: 'command', pausedAt: new Date().toISOString(), previousReplicas, note: null };
}

async function resumeCommand(pause: CommandPause, state: PauseState, opts: WorkerOptions): Promise<void> {
  const replicas = state.previousReplicas;
  const env = commandEnv(opts);
  let command = pause.resume;
  if (command.includes('{replicas}')) {
    if (replicas === null) throw new WorkerPauseError('the resume command needs {replicas} but the replica count before the pause is unknown');
    // An integer, so splicing it into the command line cannot inject anything.
    command = command.split('{replicas}').join(String(replicas));
  }
  if (replicas !== null) env.STARFORGE_PREVIOUS_REPLICAS = String(replicas);
  await run('resume', command, env, opts);
}

// ---------------------------------------------------------------- http

type HttpPause = Extract<WorkerPauseConfig, { method: 'http' }>;

function bearerToken(pause: HttpPause): string | null {
  if (!pause.tokenEnv) return null;
  const token = process.env[pause.tokenEnv];
  // Sending the call unauthenticated would only fail less clearly.
  if (!token) throw new WorkerPauseError(`${pause.tokenEnv} (workers.pause.tokenEnv) is not set`);
  return token;
}

async function post(action: 'pause' | 'resume', url: string, pause: HttpPause, opts: WorkerOptions): Promise<void> {
  const token = bearerToken(pause);
  const timeoutMs = opts.environment.workers.pauseTimeoutMs;
  // Only the origin goes into logs and errors: the path or query may carry credentials.
  const origin = new URL(url).origin;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const started = performance.now();
  opts.log(`POST ${action} request to ${origin}`);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ environment: opts.environment.name, runId: opts.runId, reason: opts.reason, action }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const name = (err as Error).name;
    const why = name === 'TimeoutError' || name === 'AbortError' ? `timed out after ${timeoutMs} ms` : `failed (${networkCode(err)})`;
    throw new WorkerPauseError(`${action} request to ${origin} ${why}`);
  }
  // Drain the body so the connection is released; its content is not shown (it may echo headers).
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new WorkerPauseError(`${action} request to ${origin} answered HTTP ${response.status}`);
  opts.log(`${action} request answered HTTP ${response.status} in ${elapsed(started)} ms`);
}

function networkCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : 'network error';
}

// ---------------------------------------------------------------- API

/** Pauses the environment's ETL workers; once this returns no batch is in flight. */
export async function pauseWorkers(opts: WorkerOptions): Promise<PauseState> {
  const pause = opts.environment.workers.pause;
  switch (pause.method) {
    case 'sql':
      return pauseSql(opts);
    case 'command':
      return pauseCommand(pause, opts);
    case 'http':
      await post('pause', pause.pauseUrl, pause, opts);
      return { method: 'http', pausedAt: new Date().toISOString(), previousReplicas: null, note: null };
  }
}

export interface EtlControlRow {
  paused: boolean;
  changedBy: string | null;
  reason: string | null;
}

/**
 * After a restore: pg_restore put back the backup's etl_control row, which
 * was written after the apply paused the ETL, so it says paused (by the
 * apply). Sets the row back to what `state` (the restore's own pause) left:
 * its own pause, or the operator's pause it found. resumeWorkers then lifts
 * only the restore's own. Returns the row the backup carried (null: no table).
 */
export async function reassertPause(state: PauseState, opts: WorkerOptions): Promise<EtlControlRow | null> {
  if (state.method !== 'sql' || state.note === NO_ETL_CONTROL_NOTE) return null;
  return withClient(opts, 'resetting etl_control after the restore', async (client) => {
    if (!(await one<{ exists: boolean }>(client, etlControlExists())).exists) return null;
    const row = await maybeOne<{ paused: boolean; reason: string | null; changed_by: string | null }>(client, readEtlControl());
    if (!row) return null;
    const carried = { paused: row.paused, changedBy: row.changed_by, reason: row.reason };
    const [by, reason] = state.previous ? [state.previous.changedBy ?? 'unknown', state.previous.reason] : [state.pausedBy ?? opts.actor, state.pauseReason ?? opts.reason];
    if (!(row.paused && row.changed_by === by && row.reason === reason)) {
      await exec(client, setEtlPaused(true, reason, by));
    }
    return carried;
  });
}

/**
 * sql method: clears etl_control.paused when one of `pauses` (a run's own)
 * set it; another pause is left alone. For a run whose process died before
 * its pause was recorded as done: the flag may be set with no PauseState.
 */
export async function liftOwnPause(pauses: OwnPause[], opts: WorkerOptions): Promise<'lifted' | 'not-paused' | 'paused-by-someone-else' | 'no-etl-control'> {
  return withClient(opts, 'clearing etl_control.paused', async (client) => {
    if (!(await one<{ exists: boolean }>(client, etlControlExists())).exists) return 'no-etl-control';
    const current = await maybeOne<{ paused: boolean; reason: string | null; changed_by: string | null }>(client, readEtlControl());
    if (!current?.paused) return 'not-paused';
    if (!isAdopted(current, { ...opts, adopt: pauses })) return 'paused-by-someone-else';
    await setPaused(client, false, opts);
    opts.log('cleared etl_control.paused (the run\'s own pause): workers resume');
    return 'lifted';
  });
}

/** Undoes pauseWorkers with the state it returned (as stored with the run). */
export async function resumeWorkers(state: PauseState, opts: WorkerOptions): Promise<ResumeOutcome> {
  const pause = opts.environment.workers.pause;
  if (pause.method !== state.method) {
    throw new WorkerPauseError(`workers were paused with the ${state.method} method but ${opts.environment.name} now uses ${pause.method}: resume them by hand`);
  }
  switch (pause.method) {
    case 'sql':
      return resumeSql(state, opts);
    case 'command':
      return resumeCommand(pause, state, opts);
    case 'http':
      return post('resume', pause.resumeUrl, pause, opts);
  }
}

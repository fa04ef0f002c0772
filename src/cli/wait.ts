import { formatBytes } from '../../services/format-bytes.js';
import { RUN_STATUSES } from '../../services/runs/state-machine.js';
import { REQUEST_TIMEOUT_MS, type Client } from './client.js';
import { enc } from './context.js';
import { ApiError, UnreachableError } from './errors.js';
import { sseFrames } from './event-stream.js';
import { eventSubject, type AuditEvent, type Run } from './format.js';

// `runs wait`: follow the run until it reaches a target, ends badly, or time runs out.

export const WAIT_TARGETS = ['preflight', 'approved', 'applied', 'done'] as const;
export type WaitPoint = (typeof WAIT_TARGETS)[number];
/** A named point of the good path, or the run statuses any of which ends the wait (e.g. restored, or rolled_back,restored). */
export type WaitTarget = WaitPoint | readonly string[];

/** Statuses a run never leaves: waiting on for any other status is hopeless. */
const FINAL = ['rejected', 'cancelled', 'rolled_back', 'restored'];

/** Parses --until: a point, or a comma-separated list of run statuses. */
export function parseWaitTarget(value: string): WaitTarget | { error: string } {
  if ((WAIT_TARGETS as readonly string[]).includes(value)) return value as WaitPoint;
  const statuses = value.split(',').map((v) => v.trim()).filter(Boolean);
  const unknown = statuses.filter((v) => !(RUN_STATUSES as readonly string[]).includes(v));
  if (!statuses.length || unknown.length) {
    return { error: `${unknown.length ? `Unknown status ${unknown.join(', ')}. ` : ''}Expected ${WAIT_TARGETS.join(', ')}, or run statuses separated by commas (${RUN_STATUSES.join(', ')}).` };
  }
  return statuses;
}

export const describeTarget = (target: WaitTarget): string => (typeof target === 'string' ? target : target.join(' or '));
export type Verdict = 'wait' | 'ok' | 'bad';

/** From approval onwards, the statuses of a run that is going well. */
const GOOD_PATH = ['approved', 'scheduled', 'applying', 'verifying', 'monitoring', 'succeeded'];
/** Statuses a run does not come back from (for our purposes): waiting longer cannot reach any target. */
const BAD_END = ['preflight_failed', 'rejected', 'failed', 'verification_failed', 'degraded', 'cancelled', 'rolled_back', 'restored', 'interrupted'];
const BEFORE: Record<Exclude<WaitPoint, 'done'>, string[]> = {
  preflight: ['created', 'preflight_running'],
  approved: ['created', 'preflight_running', 'awaiting_approval'],
  applied: ['created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled', 'applying', 'verifying'],
};
const REACHED: Record<Exclude<WaitPoint, 'done'>, string[]> = {
  preflight: ['awaiting_approval', ...GOOD_PATH],
  approved: GOOD_PATH,
  applied: ['monitoring', 'succeeded'],
};

/** Whether a run in `status` has reached `target`, must be waited on, or can no longer get there. */
export function judge(target: WaitTarget, status: string): Verdict {
  if (typeof target !== 'string') {
    // Statuses asked for by name: reaching one is success, whatever it is (a restore followed to restored).
    if (target.includes(status)) return 'ok';
    return FINAL.includes(status) ? 'bad' : 'wait';
  }
  if (BAD_END.includes(status)) return 'bad';
  if (target === 'done') return status === 'succeeded' ? 'ok' : 'wait';
  if (REACHED[target].includes(status)) return 'ok';
  // Anything else (rolling_back, restoring) has left the path to the target.
  return BEFORE[target].includes(status) ? 'wait' : 'bad';
}

/** Statuses in which a run has a step at work, whose progress is worth reading. */
const WORKING = ['applying', 'verifying', 'rolling_back', 'restoring'];

type StepProgress = NonNullable<Run['progress']>;

/** How far the step is: 'migration 2/5', 'create index: building index: scanning table 40%', 'backup 31% 1.2 GiB of ~3.9 GiB at 40.0 MiB/s'. */
function howFar(p: StepProgress): string {
  if (p.phase === 'migrating') return `migration ${p.done + 1}/${p.total}`;
  const percent = p.total > 0 ? `${Math.floor((100 * p.done) / p.total)}%` : null;
  if (p.unit !== 'bytes') return `${p.phase} ${percent ?? p.done}`;
  // A dump's total is an estimate: '~' calibrated on the last dump, 'at most' the database size.
  const of = p.total <= 0 ? '' : ` of ${p.totalBasis === 'database-size' ? 'at most ' : p.totalBasis === 'previous-backup' ? '~' : ''}${formatBytes(p.total)}`;
  const speed = p.bytesPerSecond ? ` at ${formatBytes(p.bytesPerSecond)}/s` : '';
  return `${p.phase}${percent ? ` ${percent}` : ''} ${formatBytes(p.done)}${of}${speed}`;
}

export function progressLine(run: Pick<Run, 'status'> & { progress?: Run['progress'] }, newest: AuditEvent | undefined): string {
  // Progress belongs to a run at work: after it, the last step's numbers would be stale.
  const p = WORKING.includes(run.status) ? run.progress : null;
  // The running step, when the service reports one: which migration, how far, how long still
  // (at most that long when the total is an upper bound).
  const eta = p && p.etaSeconds !== null ? ` eta${p.totalBasis === 'database-size' ? '<=' : '='}${p.etaSeconds}s` : '';
  const step = p ? ` progress=${p.migration ?? '-'} ${howFar(p)}${eta}` : '';
  if (!newest) return `status=${run.status}${step}`;
  const subject = eventSubject(newest);
  return `status=${run.status} phase=${newest.type}${subject ? ` ${subject}` : ''}${step}`;
}

export interface WaitOptions {
  target: WaitTarget;
  timeoutMs: number;
  intervalMs: number;
}

export interface WaitResult {
  outcome: 'ok' | 'bad' | 'timeout';
  run: Run;
}

const MAX_CONSECUTIVE_FAILURES = 5;
/** Answers that mean "this server cannot stream to us now": fall back to polling. */
const NO_STREAM = [404, 405, 406, 429, 501, 503];

function transient(err: unknown): boolean {
  return err instanceof UnreachableError || (err instanceof ApiError && [502, 503, 504].includes(err.status));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Webhook deliveries are the notifier's business, not a phase of the run. */
const isPhase = (e: AuditEvent) => !e.type.startsWith('notification.');

interface Progress {
  run: Run;
  /** The newest phase event reported. */
  newest: AuditEvent | undefined;
  /** Counts the stream's events handled: a read started before one may be older than what it brought. */
  seen: number;
  /** Prints the status and phase line when it changed. */
  report(newest: AuditEvent | undefined): void;
  /** Prints a warning or note as it is. */
  note(line: string): void;
}

function tracker(run: Run, progress: (line: string) => void): Progress {
  let last = '';
  const state: Progress = {
    run,
    newest: undefined,
    seen: 0,
    report(newest) {
      state.newest = newest;
      const line = progressLine(state.run, newest);
      if (line !== last) progress(line);
      last = line;
    },
    note(line) {
      progress(line);
      last = '';
    },
  };
  return state;
}

/**
 * Waits for a run to reach `opts.target`, reporting each change of status or
 * phase through `progress`. It follows the run's live event stream
 * (GET /v1/events/stream?run=, resumed with Last-Event-ID after a drop) and
 * falls back to polling GET /v1/runs/:id every `intervalMs` where the service
 * cannot stream (an older version, streaming turned off or full). The first
 * read must succeed (a wrong URL or id fails at once); later, brief outages
 * (a restart) are ridden out.
 */
export async function waitForRun(client: Client, id: string, opts: WaitOptions, progress: (line: string) => void): Promise<WaitResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const timeoutMs = () => Math.min(REQUEST_TIMEOUT_MS, Math.max(1000, deadline - Date.now()));
  const read = (await client.request('GET', `/v1/runs/${enc(id)}`, { timeoutMs: timeoutMs() })).json as Run;
  const events = (await client.request('GET', `/v1/runs/${enc(id)}/events`, { timeoutMs: timeoutMs() })).json as AuditEvent[];
  // The trail was read after the run: its newest transition is where the stream goes on from (the run may have
  // moved in between, and the stream skips what the trail showed).
  const newestStatus = events.filter((e) => e.to).at(-1)?.to;
  const run = newestStatus && newestStatus !== read.status ? { ...read, status: newestStatus, progress: null } : read;
  const state = tracker(run, progress);
  state.report(events.filter(isPhase).at(-1));
  const verdict = judge(opts.target, run.status);
  if (verdict !== 'wait') return { outcome: verdict, run: run === read ? run : await latest(client, id, state) };
  const streamed = await followStream(client, id, opts, state, new Set(events.map((e) => e.id)), deadline);
  if (streamed) return streamed;
  return poll(client, id, opts, state, deadline);
}

/** The stream's verdict, or null when the caller should poll instead. */
async function followStream(client: Client, id: string, opts: WaitOptions, state: Progress, seen: Set<number>, deadline: number): Promise<WaitResult | null> {
  const stopRefresh = refreshWhileWorking(client, id, state, opts.intervalMs);
  try {
    return await readStream(client, id, opts, state, seen, deadline);
  } finally {
    stopRefresh();
  }
}

async function readStream(client: Client, id: string, opts: WaitOptions, state: Progress, seen: Set<number>, deadline: number): Promise<WaitResult | null> {
  let failures = 0;
  // From the start of the run's trail: the stream sends it in an order that
  // is final, so an event that committed after the first read, below its
  // newest id, still comes. What that read showed already is skipped.
  let lastId = 0;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { outcome: 'timeout', run: await latest(client, id, state) };
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), remaining);
    try {
      const body = await client.stream('/v1/events/stream', { query: { run: id }, headers: { 'last-event-id': String(lastId) }, signal: abort.signal });
      failures = 0;
      for await (const frame of sseFrames(body)) {
        if (frame.event !== 'run-event') continue;
        const event = JSON.parse(frame.data) as AuditEvent;
        lastId = Math.max(lastId, event.id);
        if (seen.has(event.id)) continue;
        state.seen += 1;
        if (event.to) state.run = { ...state.run, status: event.to };
        // The running step's progress lives on the run, not in the event: read it when a backup or migration step changes.
        if (event.type.startsWith('migration.') || event.type.startsWith('backup.')) await latest(client, id, state);
        if (isPhase(event)) state.report(event);
        if (event.to && judge(opts.target, event.to) !== 'wait') {
          // The run itself (not the event) is the answer.
          const run = await latest(client, id, state);
          const verdict = judge(opts.target, run.status);
          if (verdict !== 'wait') return { outcome: verdict, run };
        }
      }
      // The server ended the stream (shutdown, overflow): resume after the last event seen.
      await sleep(Math.min(500, deadline - Date.now()));
    } catch (err) {
      if (abort.signal.aborted) return { outcome: 'timeout', run: await latest(client, id, state) };
      if (err instanceof ApiError && NO_STREAM.includes(err.status)) {
        state.note(`note: no event stream (${err.status} ${err.detail || err.title}); polling every ${opts.intervalMs} ms`);
        return null;
      }
      if (!transient(err) && !(err instanceof TypeError) && !(err instanceof SyntaxError)) throw err;
      if (++failures > MAX_CONSECUTIVE_FAILURES) {
        state.note(`note: the event stream keeps failing (${(err as Error).message.split('\n')[0]}); polling every ${opts.intervalMs} ms`);
        return null;
      }
      await sleep(Math.min(opts.intervalMs, deadline - Date.now()));
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }
}

/**
 * A backup or an index build moves without any event (its samples are the
 * run's state, not audit events), so while the run works it is re-read every
 * `intervalMs` and the line printed when its progress changed. Returns the stop.
 */
function refreshWhileWorking(client: Client, id: string, state: Progress, intervalMs: number): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy || !WORKING.includes(state.run.status)) return;
    busy = true;
    const before = state.seen;
    client.request('GET', `/v1/runs/${enc(id)}`).then((res) => {
      // An event handled meanwhile may have brought a newer status than this read; a read with another status than
      // the stream's is ahead of (or behind) the stream: the stream brings that change, in order.
      const fetched = res.json as Run;
      if (state.seen !== before || fetched.status !== state.run.status) return;
      state.run = fetched;
      state.report(state.newest);
    }, () => undefined).finally(() => { busy = false; });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The run as it is now. What is printed follows the stream: the status its
 * events reached, and the progress of the read only where the read has that
 * status too (a read can be ahead of a stream that lags: then the status
 * printed would go forward and back).
 */
async function latest(client: Client, id: string, state: Progress): Promise<Run> {
  try {
    const fetched = (await client.request('GET', `/v1/runs/${enc(id)}`)).json as Run;
    state.run = fetched.status === state.run.status ? fetched : { ...state.run, progress: null };
    return fetched;
  } catch (err) {
    if (!transient(err)) throw err;
  }
  return state.run;
}

async function poll(client: Client, id: string, opts: WaitOptions, state: Progress, deadline: number): Promise<WaitResult> {
  let failures = 0;
  for (;;) {
    if (Date.now() >= deadline) return { outcome: 'timeout', run: state.run };
    await sleep(Math.min(opts.intervalMs, deadline - Date.now()));
    try {
      const timeoutMs = Math.min(REQUEST_TIMEOUT_MS, Math.max(1000, deadline - Date.now()));
      const current = (await client.request('GET', `/v1/runs/${enc(id)}`, { timeoutMs })).json as Run;
      const events = (await client.request('GET', `/v1/runs/${enc(id)}/events`, { timeoutMs })).json as AuditEvent[];
      state.run = current;
      failures = 0;
      state.report(events.filter(isPhase).at(-1));
      const verdict = judge(opts.target, current.status);
      if (verdict !== 'wait') return { outcome: verdict, run: current };
    } catch (err) {
      if (!transient(err) || ++failures > MAX_CONSECUTIVE_FAILURES) throw err;
      state.note(`warning: ${(err as Error).message.split('\n')[0]}; still waiting`);
    }
  }
}

import { REQUEST_TIMEOUT_MS, type Client } from './client.js';
import { enc } from './context.js';
import { ApiError, UnreachableError } from './errors.js';
import { eventSubject, type AuditEvent, type Run } from './format.js';

// `runs wait`: poll the run until it reaches a target, ends badly, or time runs out.

export const WAIT_TARGETS = ['preflight', 'approved', 'applied', 'done'] as const;
export type WaitTarget = (typeof WAIT_TARGETS)[number];
export type Verdict = 'wait' | 'ok' | 'bad';

/** From approval onwards, the statuses of a run that is going well. */
const GOOD_PATH = ['approved', 'scheduled', 'applying', 'verifying', 'monitoring', 'succeeded'];
/** Statuses a run does not come back from (for our purposes): waiting longer cannot reach any target. */
const BAD_END = ['preflight_failed', 'rejected', 'failed', 'verification_failed', 'degraded', 'cancelled', 'rolled_back', 'restored', 'interrupted'];
const BEFORE: Record<Exclude<WaitTarget, 'done'>, string[]> = {
  preflight: ['created', 'preflight_running'],
  approved: ['created', 'preflight_running', 'awaiting_approval'],
  applied: ['created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled', 'applying', 'verifying'],
};
const REACHED: Record<Exclude<WaitTarget, 'done'>, string[]> = {
  preflight: ['awaiting_approval', ...GOOD_PATH],
  approved: GOOD_PATH,
  applied: ['monitoring', 'succeeded'],
};

/** Whether a run in `status` has reached `target`, must be waited on, or can no longer get there. */
export function judge(target: WaitTarget, status: string): Verdict {
  if (BAD_END.includes(status)) return 'bad';
  if (target === 'done') return status === 'succeeded' ? 'ok' : 'wait';
  if (REACHED[target].includes(status)) return 'ok';
  // Anything else (rolling_back, restoring) has left the path to the target.
  return BEFORE[target].includes(status) ? 'wait' : 'bad';
}

export function progressLine(run: Pick<Run, 'status'> & { progress?: Run['progress'] }, newest: AuditEvent | undefined): string {
  const p = run.progress;
  // The running step, when the service reports one: which migration, how far, how long still.
  const how = !p ? '' : p.phase === 'migrating' ? `migration ${p.done + 1}/${p.total}` : `${p.phase} ${p.total > 0 ? `${Math.floor((100 * p.done) / p.total)}%` : p.done}`;
  const step = p ? ` progress=${p.migration ?? '-'} ${how}${p.etaSeconds !== null ? ` eta=${p.etaSeconds}s` : ''}` : '';
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

function transient(err: unknown): boolean {
  return err instanceof UnreachableError || (err instanceof ApiError && [502, 503, 504].includes(err.status));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Polls GET /v1/runs/:id and its events, reporting each change of status or
 * phase through `progress`. The first poll must succeed (a wrong URL or id
 * fails at once); later, brief outages (a restart) are ridden out.
 */
export async function waitForRun(client: Client, id: string, opts: WaitOptions, progress: (line: string) => void): Promise<WaitResult> {
  const deadline = Date.now() + opts.timeoutMs;
  let run: Run | undefined;
  let last = '';
  let failures = 0;
  for (;;) {
    try {
      const timeoutMs = Math.min(REQUEST_TIMEOUT_MS, Math.max(1000, deadline - Date.now()));
      const current = (await client.request('GET', `/v1/runs/${enc(id)}`, { timeoutMs })).json as Run;
      const events = (await client.request('GET', `/v1/runs/${enc(id)}/events`, { timeoutMs })).json as AuditEvent[];
      run = current;
      failures = 0;
      // Webhook deliveries are the notifier's business, not a phase of the run.
      const line = progressLine(run, events.filter((e) => !e.type.startsWith('notification.')).at(-1));
      if (line !== last) progress(line);
      last = line;
      const verdict = judge(opts.target, run.status);
      if (verdict !== 'wait') return { outcome: verdict, run };
    } catch (err) {
      if (!run || !transient(err) || ++failures > MAX_CONSECUTIVE_FAILURES) throw err;
      progress(`warning: ${(err as Error).message.split('\n')[0]}; still waiting`);
    }
    if (Date.now() >= deadline) return { outcome: 'timeout', run: run! };
    await sleep(Math.min(opts.intervalMs, deadline - Date.now()));
  }
}

import pg from 'pg';
import { one, rows } from '../../database/db.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import { blockingSessions, cancelBackend } from '../../database/sql/blockers.js';
import { statementProgress } from '../../database/sql/progress.js';

/** A session the migration's statement waited for (pg_blocking_pids), as recorded in the log, the event and the failure. */
export interface Blocker {
  pid: number;
  applicationName: string;
  user: string | null;
  state: string | null;
  /** Age of the blocker's transaction, in seconds (null: none open). */
  transactionAgeSeconds: number | null;
  /** How long it has been in `state` (e.g. idle in transaction), in seconds. */
  stateAgeSeconds: number | null;
  /** The first 200 characters of its (last) query, literals and URL/password-like text removed. */
  query: string;
}

export interface CancelledBlocker {
  pid: number;
  state: string | null;
  reason: string;
  cancelled: boolean;
}

export interface LockWait {
  blockers: Blocker[];
  cancelled: CancelledBlocker[];
}

const QUERY_CHARS = 200;

/**
 * A query as it may be shown: string literals (also E'' and dollar-quoted),
 * URLs and whatever follows password/secret/token-like words are replaced
 * before cutting to 200 characters, so a cut never exposes half a literal.
 */
export function scrubQuery(query: string, secrets: Array<string | undefined> = []): string {
  let s = query;
  for (const secret of secrets) if (secret) s = s.split(secret).join('<secret>');
  s = s
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?(?:\$\1\$|$)/g, "'…'")
    .replace(/(?:\b[EeBbXxUu]&?)?'(?:[^']|'')*(?:'|$)/g, "'…'")
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"),;]+/gi, '<url>')
    .replace(/\b(password|passwd|pwd|secret|token|api[_-]?key|credentials?)(\s*(?:=|:|\s)\s*)("[^"]*"|[^\s,;)]+)/gi, '$1$2<redacted>')
    .replace(/\s+/g, ' ')
    .trim();
  return s.length > QUERY_CHARS ? s.slice(0, QUERY_CHARS) : s;
}

interface BlockerRow {
  pid: number; application_name: string; usename: string | null; state: string | null;
  xact_seconds: number | null; state_seconds: number | null; query_seconds: number | null; query: string | null;
}

const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

export function describeBlocker(b: Blocker): string {
  const age = b.transactionAgeSeconds === null ? '' : `, transaction open ${b.transactionAgeSeconds} s`;
  return `pid ${b.pid} (${b.applicationName || 'no application_name'}, user ${b.user ?? '?'}, ${b.state ?? 'unknown state'}${age}): ${b.query || '(no query)'}`;
}

export interface BlockerWatchOptions {
  targetUrl: string;
  /** The migration's backend, whose waits are sampled. */
  pid: number;
  lockTimeoutMs: number;
  /** Cancel blockers whose statement has run longer than this (null: never cancel). */
  cancelAfterMs: number | null;
  secrets: string[];
  log: (line: string) => void;
  /** Also samples the backend's progress views (index builds, CLUSTER/VACUUM FULL) on the same connection. */
  onProgress?: (progress: StatementProgress | null) => void;
}

/** A long statement's progress, as pg_stat_progress_create_index / _cluster report it. */
export interface StatementProgress {
  command: string;
  phase: string;
  done: number;
  total: number;
  unit: 'blocks' | 'tuples';
}

export interface BlockerWatch {
  /** What was seen (and cancelled) since the last take; starts a fresh record. */
  take(): LockWait;
  stop(): Promise<void>;
}

/**
 * Samples pg_blocking_pids(<migration backend>) from a second connection while
 * the migration runs: a statement waiting for a lock is blocked, so only another
 * session can see who it waits for, and only while it waits (after lock_timeout
 * fires the wait, and the evidence, are gone). Sampling at a quarter of
 * lock_timeout sees every wait that reaches the timeout at least a few times.
 *
 * pg_cancel_backend ends a blocker's running statement; it has no effect on a
 * session idle in transaction (PostgreSQL ignores a cancel while it reads the
 * next command), and such a session is only ever named, never terminated.
 */
export async function watchBlockers(opts: BlockerWatchOptions): Promise<BlockerWatch> {
  let seen = new Map<number, Blocker>();
  let cancelled = new Map<number, CancelledBlocker>();
  const attempted = new Set<number>();
  const client = new pg.Client({ connectionString: opts.targetUrl, application_name: 'starforge-lock-watch', statement_timeout: 5_000 });
  client.on('error', () => undefined);
  let connected = true;
  try {
    await client.connect();
  } catch (err) {
    connected = false;
    opts.log(`cannot watch for blocking sessions: ${describeConnectionError(err)}`);
  }
  let stopped = false;
  const intervalMs = Math.max(20, Math.min(250, Math.floor(opts.lockTimeoutMs / 4)));

  const sample = async () => {
    const found = await rows<BlockerRow>(client, blockingSessions(opts.pid));
    for (const r of found) {
      const blocker: Blocker = {
        pid: r.pid, applicationName: r.application_name, user: r.usename, state: r.state,
        transactionAgeSeconds: round(r.xact_seconds), stateAgeSeconds: round(r.state_seconds),
        query: scrubQuery(r.query ?? '', opts.secrets),
      };
      seen.set(r.pid, blocker);
      if (opts.cancelAfterMs === null || attempted.has(r.pid)) continue;
      const runningMs = r.state === 'active' && r.query_seconds !== null ? r.query_seconds * 1000 : 0;
      const idleMs = r.state?.startsWith('idle in transaction') && r.state_seconds !== null ? r.state_seconds * 1000 : 0;
      if (runningMs > opts.cancelAfterMs) {
        attempted.add(r.pid);
        const ok = (await one<{ cancelled: boolean }>(client, cancelBackend(r.pid))).cancelled;
        const entry = { pid: r.pid, state: r.state, cancelled: ok, reason: `statement running ${Math.round(runningMs)} ms > cancelBlockersAfterMs ${opts.cancelAfterMs}` };
        cancelled.set(r.pid, entry);
        opts.log(`cancelled blocker ${describeBlocker(blocker)} (${entry.reason})${ok ? '' : ': pg_cancel_backend returned false'}`);
      } else if (idleMs > opts.cancelAfterMs) {
        attempted.add(r.pid);
        const entry = { pid: r.pid, state: r.state, cancelled: false, reason: `idle in transaction ${Math.round(idleMs)} ms: a cancel does not reach an idle session and it is never terminated by the service; end it by hand (pg_terminate_backend) if it is safe to` };
        cancelled.set(r.pid, entry);
        opts.log(`blocker ${describeBlocker(blocker)} not cancelled: ${entry.reason}`);
      }
    }
  };

  const sampleProgress = async () => {
    if (!opts.onProgress) return;
    const [p] = await rows<{ command: string; phase: string; done: number | null; total: number | null; tuples_done: number | null; tuples_total: number | null }>(client, statementProgress(opts.pid));
    if (!p) return opts.onProgress(null);
    // Blocks when the phase counts them, else tuples (e.g. while sorting or loading the index).
    const byBlocks = (p.total ?? 0) > 0;
    opts.onProgress({ command: p.command, phase: p.phase, done: (byBlocks ? p.done : p.tuples_done) ?? 0, total: (byBlocks ? p.total : p.tuples_total) ?? 0, unit: byBlocks ? 'blocks' : 'tuples' });
  };

  // The pause between two samples ends early when the watch is stopped: the apply does not wait out an interval after its last migration.
  let wake: (() => void) | null = null;
  const pause = () => new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      wake = null;
      resolve();
    }, intervalMs);
    wake = () => {
      clearTimeout(timer);
      wake = null;
      resolve();
    };
  });
  const loop = (async () => {
    while (connected && !stopped) {
      try {
        await sample();
        await sampleProgress();
      } catch (err) {
        if (stopped) break;
        opts.log(`sampling blocking sessions failed: ${(err as Error).message}`);
      }
      if (!stopped) await pause();
    }
  })();

  return {
    take() {
      const result = { blockers: [...seen.values()], cancelled: [...cancelled.values()] };
      seen = new Map();
      cancelled = new Map();
      attempted.clear();
      return result;
    },
    async stop() {
      stopped = true;
      (wake as (() => void) | null)?.();
      await loop;
      if (connected) await client.end().catch(() => undefined);
    },
  };
}

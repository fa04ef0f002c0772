import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { rows } from '../../../database/db.js';
import { relationFiles, sampleBackendLocks } from '../../../database/sql/observe.js';

// Times every query a migration sends, with the relation locks its session
// holds. Two views of the locks: right after each query, on the same
// connection (exact for a migration in a transaction, whose locks stay until
// COMMIT), and a second connection polling pg_locks of the backend while
// queries run (sees what a statement outside a transaction holds while it
// runs, and locks a statement takes part-way). After each query the
// relations' storage files are read too: a new file is a rewrite, a new
// index on an existing table an index build.

export interface RelationFile {
  oid: number;
  relation: string;
  relkind: string;
  filenode: string;
  index_of: number | null;
}

export interface TimedQuery {
  sql: string;
  start: number;
  end: number;
  ok: boolean;
  /** Lock keys ('relation|mode') the session held right after the query; null when they could not be read (aborted transaction). */
  after: Set<string> | null;
  afterAt: number;
  filesAfter: RelationFile[] | null;
}

export interface LockSample {
  at: number;
  keys: Set<string>;
}

export interface TimedRun {
  queries: TimedQuery[];
  samples: LockSample[];
  filesStart: RelationFile[];
  endedAt: number;
}

const TABLE_KINDS = new Set(['r', 'p', 'm']);
const POLL_INTERVAL_MS = 20;

type LockRow = { relation: string; relkind: string; mode: string };
const keysOf = (locks: LockRow[]) => new Set(locks.filter((l) => TABLE_KINDS.has(l.relkind)).map((l) => `${l.relation}|${l.mode}`));

export class StatementTimer {
  private readonly queries: TimedQuery[] = [];
  private readonly samples: LockSample[] = [];
  private filesStart: RelationFile[] = [];
  private poller: pg.Client | null = null;
  private polling: Promise<void> | null = null;
  private running = false;
  /** What the migration runner is given: the rehearsal's connection, every query timed. */
  readonly client: pg.ClientBase;

  constructor(private readonly target: pg.ClientBase, private readonly url: string, private readonly pid: number) {
    const timed = (...args: unknown[]) => this.timedQuery(args);
    this.client = new Proxy(target, {
      get: (t, p) => {
        if (p === 'query') return timed;
        const v = Reflect.get(t, p, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  }

  private async timedQuery(args: unknown[]): Promise<unknown> {
    const query = this.target.query.bind(this.target) as (...a: unknown[]) => Promise<unknown>;
    if (typeof args[args.length - 1] === 'function') return query(...args); // callback style: not used by the runner
    const first = args[0] as string | { text?: string } | undefined;
    const sql = typeof first === 'string' ? first : first?.text ?? '';
    const start = performance.now();
    let ok = true;
    try {
      return await query(...args);
    } catch (err) {
      ok = false;
      throw err;
    } finally {
      const entry: TimedQuery = { sql, start, end: performance.now(), ok, after: null, afterAt: 0, filesAfter: null };
      this.queries.push(entry);
      try {
        entry.after = keysOf(await rows<LockRow>(this.target, sampleBackendLocks(this.pid)));
        entry.afterAt = performance.now();
        entry.filesAfter = await rows<RelationFile>(this.target, relationFiles());
      } catch {
        // An aborted transaction refuses every query until its ROLLBACK; the poller's samples stand.
      }
    }
  }

  async start(): Promise<void> {
    this.filesStart = await rows<RelationFile>(this.target, relationFiles());
    try {
      this.poller = new pg.Client({ connectionString: this.url, application_name: 'starforge-rehearsal-timing' });
      this.poller.on('error', () => undefined);
      await this.poller.connect();
      this.running = true;
      this.polling = this.poll();
    } catch {
      this.poller = null; // without a second connection only the after-query view remains
    }
  }

  private async poll(): Promise<void> {
    while (this.running && this.poller) {
      try {
        const sent = performance.now();
        const locks = await rows<LockRow>(this.poller, sampleBackendLocks(this.pid));
        this.samples.push({ at: (sent + performance.now()) / 2, keys: keysOf(locks) });
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  async stop(): Promise<TimedRun> {
    this.running = false;
    await this.polling;
    await this.poller?.end().catch(() => undefined);
    this.poller = null;
    return { queries: this.queries, samples: this.samples, filesStart: this.filesStart, endedAt: performance.now() };
  }
}

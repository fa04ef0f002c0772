import { lockModeOf } from '../observe/lock-names.js';
import type { RelationFile, TimedQuery, TimedRun } from './statement-timing.js';
import type { HeldLock } from './types.js';

// From a timed run to what each statement did: the locks it took and how long
// they were held, and the tables it rewrote or built an index on.

export interface StatementEffects {
  query: TimedQuery;
  locks: HeldLock[];
  /** Tables ('schema.table') whose storage was replaced by this statement. */
  rewrote: string[];
  /** Tables this statement built (or rebuilt) an index on. */
  indexed: string[];
}

interface Seen {
  first: number;
  firstQuery: number;
  last: number;
}

/** The index of the query running (or last started) at time `at`. */
function queryAt(queries: TimedQuery[], at: number): number {
  let index = -1;
  for (let i = 0; i < queries.length && queries[i]!.start <= at; i++) index = i;
  return index;
}

function observe(seen: Map<string, Seen>, key: string, at: number, query: number): void {
  const s = seen.get(key);
  if (!s) seen.set(key, { first: at, firstQuery: query, last: at });
  else if (at > s.last) s.last = at;
}

/**
 * When each lock was taken and released. It is taken during the query it was
 * first seen in (held from that query's start); it is released at the end of
 * the first query to finish after it was last seen (COMMIT in a transaction,
 * the statement itself outside one), or earlier if a poll saw it gone.
 */
function lockTimeline(run: TimedRun): Map<string, Seen & { released: number }> {
  const seen = new Map<string, Seen>();
  const { queries, samples } = run;
  queries.forEach((q, i) => {
    for (const key of q.after ?? []) observe(seen, key, q.afterAt, i);
  });
  for (const s of samples) {
    const i = queryAt(queries, s.at);
    if (i >= 0) for (const key of s.keys) observe(seen, key, s.at, i);
  }
  const out = new Map<string, Seen & { released: number }>();
  for (const [key, s] of seen) {
    const ended = queries.find((q) => q.end > s.last)?.end ?? run.endedAt;
    const gone = samples.find((x) => x.at > s.last && !x.keys.has(key))?.at ?? Infinity;
    const goneAfter = queries.find((q) => q.after && q.afterAt > s.last && !q.after.has(key))?.afterAt ?? Infinity;
    out.set(key, { ...s, released: Math.min(ended, gone, goneAfter) });
  }
  return out;
}

function fileChanges(before: RelationFile[], after: RelationFile[]): { rewrote: string[]; indexed: string[] } {
  const was = new Map(before.map((r) => [r.oid, r]));
  const rewrote = new Set<string>();
  const indexed = new Set<string>();
  for (const r of after) {
    const old = was.get(r.oid);
    if (r.relkind === 'i') {
      const table = r.index_of === null ? undefined : was.get(r.index_of);
      if (table && (!old || old.filenode !== r.filenode)) indexed.add(table.relation);
    } else if (old && old.filenode !== r.filenode) {
      rewrote.add(r.relation);
    }
  }
  return { rewrote: [...rewrote].sort(), indexed: [...indexed].sort() };
}

/** The effects of each of `statements` (the migration's SQL, in order), matched to the queries that ran them. */
export function statementEffects(run: TimedRun, statements: string[]): StatementEffects[] {
  const timeline = lockTimeline(run);
  const out: StatementEffects[] = [];
  let next = 0;
  for (const statement of statements) {
    const text = statement.trim();
    let i = next;
    while (i < run.queries.length && run.queries[i]!.sql.trim() !== text) i++;
    if (i >= run.queries.length) continue;
    next = i + 1;
    const query = run.queries[i]!;
    const locks: HeldLock[] = [];
    for (const [key, s] of timeline) {
      if (s.firstQuery !== i) continue;
      const [relation, mode] = key.split('|') as [string, string];
      locks.push({ relation, mode: lockModeOf(mode), heldMs: Math.max(0, Math.round((s.released - query.start) * 10) / 10) });
    }
    locks.sort((a, b) => a.relation.localeCompare(b.relation) || a.mode.localeCompare(b.mode));
    // The files before this query: what the last readable snapshot before it showed.
    let before = run.filesStart;
    for (let j = i - 1; j >= 0; j--) {
      const files = run.queries[j]!.filesAfter;
      if (files) {
        before = files;
        break;
      }
    }
    const changes = query.filesAfter ? fileChanges(before, query.filesAfter) : { rewrote: [], indexed: [] };
    out.push({ query, locks, ...changes });
  }
  return out;
}

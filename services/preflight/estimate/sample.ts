// A small timed sample of a table on the target, read-only: how fast this
// server reads the table's pages and sorts its rows by an index's keys. The
// estimate of the whole build scales these (pages, n·log n) instead of
// assuming a throughput; see model.ts.
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { exec, one } from '../../../database/db.js';
import { beginReadOnly, rollback, sampleKeyWidth, sampleLimits, sampleScan, sampleSort } from '../../../database/sql/estimates.js';

/** At most this many heap pages are read (16 MiB at the default 8 KiB block size). */
export const SAMPLE_PAGES = 2048;
/** Smaller tables are not sampled: whatever they need is below what the estimate resolves. */
export const MIN_SAMPLED_PAGES = 128;
/** Each sample query may take this long before the estimate falls back to default rates. */
const SAMPLE_STATEMENT_TIMEOUT_MS = 5000;
/** A sample never queues behind a lock (an ACCESS EXCLUSIVE holder, say). */
const SAMPLE_LOCK_TIMEOUT_MS = 500;
/** Enough for the sample's keys to sort in memory, as an index build's do up to maintenance_work_mem. */
const SAMPLE_WORK_MEM = '64MB';
/**
 * Repeats of the warm reads and sorts; the median is kept: one stall does not
 * count, and neither does one lucky moment of a server other sessions share
 * (the build will share it too).
 */
const REPEATS = 3;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export interface SampleTarget {
  schema: string;
  relname: string;
  /** Heap pages now (pg_relation_size / block_size). */
  pages: number;
}

export interface TableSample {
  pages: number;
  sampledPages: number;
  sampledRows: number;
  /** Rows of the whole table from the sample's density (exact when every page was read). */
  rows: number;
  /** The first read of the sampled pages (from disk, if they were not cached). */
  coldMs: number;
  /** The same read again, the median of the repeats. */
  warmMs: number;
  /** Sort time per key list ('a,b'), the median of the repeats, including the warm read. */
  sortMs: Record<string, number>;
  /** Average stored bytes of each key list's values (untimed). */
  keyBytes: Record<string, number>;
}

async function timed(client: pg.ClientBase, query: { text: string; values?: unknown[] }): Promise<{ ms: number; n: number }> {
  const started = performance.now();
  const { n } = await one<{ n: number }>(client, query);
  return { ms: performance.now() - started, n };
}

/**
 * Times a read of the table's first pages and, per key list, a sort of those
 * rows by the keys. Read-only (a READ ONLY transaction, rolled back), bounded
 * (statement and lock timeouts). null when the sample could not be taken:
 * the caller then uses default rates.
 */
export async function sampleTable(client: pg.ClientBase, target: SampleTarget, keyLists: string[][], versionNum: number): Promise<TableSample | null> {
  if (target.pages < MIN_SAMPLED_PAGES) return null;
  const pages = Math.min(target.pages, SAMPLE_PAGES);
  await exec(client, beginReadOnly());
  try {
    await exec(client, sampleLimits(SAMPLE_STATEMENT_TIMEOUT_MS, SAMPLE_LOCK_TIMEOUT_MS, SAMPLE_WORK_MEM));
    const scan = () => timed(client, sampleScan(target.schema, target.relname, pages, target.pages, versionNum));
    const cold = await scan();
    const warm: number[] = [];
    for (let i = 0; i < REPEATS; i++) warm.push((await scan()).ms);
    const sortMs: Record<string, number> = {};
    const keyBytes: Record<string, number> = {};
    for (const keys of keyLists) {
      const id = keys.join(',');
      if (keys.length === 0 || id in sortMs) continue;
      keyBytes[id] = (await one<{ n: number }>(client, sampleKeyWidth(target.schema, target.relname, keys, pages, target.pages, versionNum))).n;
      const sorts: number[] = [];
      for (let i = 0; i < REPEATS; i++) sorts.push((await timed(client, sampleSort(target.schema, target.relname, keys, pages, target.pages, versionNum))).ms);
      sortMs[id] = median(sorts);
    }
    const warmMs = median(warm);
    const sampledRows = cold.n;
    return {
      pages: target.pages,
      sampledPages: pages,
      sampledRows,
      rows: pages >= target.pages ? sampledRows : Math.round((sampledRows * target.pages) / pages),
      coldMs: cold.ms,
      warmMs,
      sortMs,
      keyBytes,
    };
  } catch {
    // A timeout, a lock we would have waited for, a table dropped meanwhile: no sample, default rates.
    return null;
  } finally {
    await exec(client, rollback()).catch(() => undefined);
  }
}

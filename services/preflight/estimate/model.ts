// How long size-dependent work takes on the target, from a timed sample of
// the table (sample.ts) when there is one, else from default throughputs.
//
// An index build is a read of the heap, a sort of its keys and the write of
// the index. The read scales with the pages, the sort with n·log n; the write
// (forming, WAL-logging and writing index tuples) costs per tuple about
// WRITE_PER_TUPLE times what reading a tuple did in the warm sample.
import type { TableSample } from './sample.js';

/**
 * Index tuple write cost relative to the warm read of a heap tuple, for an
 * entry of REFERENCE_ENTRY_BYTES (an 8-byte key); wider entries cost in
 * proportion (more pages to write and WAL-log, and to visit when validating).
 * Measured on PostgreSQL 15.
 */
export const WRITE_PER_TUPLE = 2;
const REFERENCE_ENTRY_BYTES = 16;
/** The key list a sample sorts by to time CONCURRENTLY's sort of the index's TIDs. */
export const TID_KEY = ['ctid'];
/** A B-tree entry: an 8-byte IndexTupleData header plus the keys, MAXALIGNed. */
const entryBytes = (keyBytes: number) => Math.ceil((8 + keyBytes) / 8) * 8;
/** A table rewrite writes a new heap: about this many times its read. */
export const REWRITE_WRITE_FACTOR = 1.5;
/** GIN, GiST and SP-GiST build per-entry structures: this many times a B-tree build of the same keys. */
const COMPLEX_INDEX_FACTOR = 3;
/**
 * What each parallel worker of a B-tree build adds to the leader's sort
 * speed: half a process, as measured on a shared 2-core server (an idle one
 * with spare cores gains more, which the history ratio then learns).
 */
const WORKER_EFFICIENCY = 0.5;

export interface ParallelSettings {
  maxParallelMaintenanceWorkers: number;
  maintenanceWorkMemKb: number;
  minParallelTableScanBlocks: number;
}

/**
 * The parallel workers PostgreSQL plans for a B-tree build of a table of
 * `pages` (plan_create_index_workers): one more per tripling of the table
 * beyond min_parallel_table_scan_size, at most max_parallel_maintenance_workers,
 * and fewer while maintenance_work_mem leaves a participant under 32 MB.
 */
export function plannedIndexWorkers(pages: number, p: ParallelSettings): number {
  if (p.maxParallelMaintenanceWorkers <= 0) return 0;
  let threshold = Math.max(p.minParallelTableScanBlocks, 1);
  if (pages < threshold) return 0;
  let workers = 1;
  while (pages >= threshold * 3) {
    workers += 1;
    threshold *= 3;
  }
  workers = Math.min(workers, p.maxParallelMaintenanceWorkers);
  while (workers > 0 && p.maintenanceWorkMemKb / (workers + 1) < 32 * 1024) workers -= 1;
  return workers;
}

// Without a sample (a small table, or a sample that could not be taken):
// throughputs over the heap and TOAST (never the existing indexes, which an
// index build does not read).
export const DEFAULT_RATES = {
  rewriteBytesPerSecond: 40 * 1024 * 1024,
  indexBuildBytesPerSecond: 60 * 1024 * 1024,
  scanBytesPerSecond: 200 * 1024 * 1024,
};

export interface Estimate {
  ms: number;
  /** How it was derived, for the report. */
  basis: string;
}

const nlogn = (n: number) => (n <= 1 ? 0 : n * Math.log2(n));
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(1) : String(Math.round(ms)));

/**
 * A cold read slower than this many warm ones is other sessions' I/O at that
 * moment rather than the disk (a sequential read from disk is a few times
 * slower than from cache, not tens).
 */
const MAX_COLD_TO_WARM = 4;

/** The sample's read scaled to the whole heap. */
function readMs(s: TableSample): number {
  return (Math.min(s.coldMs, MAX_COLD_TO_WARM * s.warmMs) * s.pages) / s.sampledPages;
}

function perTupleMs(s: TableSample): number {
  return s.sampledRows > 0 ? s.warmMs / s.sampledRows : 0;
}

function sortPartMs(s: TableSample, sortMs: number): number {
  if (s.sampledRows < 2) return 0;
  return (Math.max(sortMs - s.warmMs, 0) * nlogn(s.rows)) / nlogn(s.sampledRows);
}

function describe(s: TableSample): string {
  return `sampled ${s.sampledPages} of ${s.pages} pages (${s.sampledRows} rows, about ${s.rows} in all) in ${fmt(s.coldMs)} ms`;
}

/**
 * A B-tree (or hash) build by `keys`; other access methods scale from it.
 * `keys` must have been sorted in the sample (its sortMs entry), else the
 * sort is taken as reading the keys twice over.
 */
export function indexBuildFromSample(s: TableSample, keys: string[], method: string, concurrent = false, workers = 0): Estimate {
  const read = readMs(s);
  const width = s.keyBytes[keys.join(',')];
  const entry = width === undefined ? 1 : Math.max(1, entryBytes(width) / REFERENCE_ENTRY_BYTES);
  const write = WRITE_PER_TUPLE * entry * perTupleMs(s) * s.rows;
  // CONCURRENTLY validates the built index in a second pass: the heap read again, every index entry
  // visited and their TIDs sorted (timed in the sample as a sort by ctid, when it was taken).
  const tids = s.sortMs[TID_KEY.join(',')];
  const validate = concurrent ? read + write + (tids === undefined ? 0 : sortPartMs(s, tids)) : 0;
  const validation = concurrent ? ` + validate ${fmt(validate)}` : '';
  if (method === 'brin') return { ms: concurrent ? 2 * read : read, basis: `BRIN: ${concurrent ? 'two reads' : 'one read'} of the heap; ${describe(s)}` };
  const sorted = s.sortMs[keys.join(',')];
  // Only B-tree builds run in parallel; the sample sorted in one process.
  const parallel = method === 'btree' && workers > 0 ? 1 + WORKER_EFFICIENCY * workers : 1;
  const sort = (sorted === undefined ? 2 * perTupleMs(s) * s.rows : sortPartMs(s, sorted)) / parallel;
  const factor = ['gin', 'gist', 'spgist'].includes(method) ? COMPLEX_INDEX_FACTOR : 1;
  const keyText = sorted === undefined ? 'keys not sampled' : `sort by (${keys.join(', ')}) ${fmt(sorted)} ms, ${Math.round(width ?? 0)}-byte keys`;
  const shared = parallel > 1 ? ` (shared by ${workers} parallel worker(s) and the leader)` : '';
  return {
    ms: (read + sort + write) * factor + validate,
    basis: `${describe(s)}; ${keyText}: read ${fmt(read)} + sort ${fmt(sort)}${shared} + write ${fmt(write)}${factor > 1 ? ` × ${factor} (${method})` : ''}${validation} ms`,
  };
}

/** A rewrite (ALTER TYPE, VACUUM FULL, CLUSTER): read and write the heap, then rebuild every index. */
export function rewriteFromSample(s: TableSample, indexes: Array<{ keys: string[]; method: string }>, workers = 0): Estimate {
  const read = readMs(s);
  const heap = read * (1 + REWRITE_WRITE_FACTOR);
  const rebuilds = indexes.reduce((sum, i) => sum + indexBuildFromSample(s, i.keys, i.method, false, workers).ms, 0);
  return { ms: heap + rebuilds, basis: `${describe(s)}: heap read and write ${fmt(heap)} ms, ${indexes.length} index rebuild(s) ${fmt(rebuilds)} ms` };
}

/** A validating scan (SET NOT NULL, VALIDATE CONSTRAINT, an UPDATE of every row): one read of the heap plus the per-row check. */
export function scanFromSample(s: TableSample): Estimate {
  const ms = readMs(s) + perTupleMs(s) * s.rows;
  return { ms, basis: `${describe(s)}: full read ${fmt(ms)} ms` };
}

export function fromDefaultRate(bytes: number, rate: number, what: string): Estimate {
  return { ms: (bytes / rate) * 1000, basis: `${what} at the default ${Math.round(rate / 1024 / 1024)} MiB/s of ${Math.round(bytes / 1024)} KiB heap and TOAST (no sample)` };
}

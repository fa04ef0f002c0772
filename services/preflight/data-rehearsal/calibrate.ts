import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { one } from '../../../database/db.js';
import {
  calibrationIndexBuild, calibrationRewrite, createCalibrationTable, dropCalibrationTable, parallelIndexSettings,
} from '../../../database/sql/data-rehearsal.js';

// What a statement costs on the copy whatever the rows (catalog updates, the
// fsync that ends an index build) must not be multiplied by the scale; and an
// index build on the target may run in parallel where the sample's does not.

export interface FixedCosts {
  /** An index build on a one-row table of the copy (the lowest of three: load only ever adds time). */
  indexMs: number;
  /** A rewrite of a one-row table of the copy (the lowest of three). */
  rewriteMs: number;
}

export interface ParallelSettings {
  maxWorkers: number;
  maintenanceWorkMemBytes: number;
  minParallelTableScanBytes: number;
  blockSize: number;
}


async function timed(copy: pg.ClientBase, text: string): Promise<number> {
  await copy.query('BEGIN');
  try {
    const started = performance.now();
    await copy.query(text);
    return performance.now() - started;
  } finally {
    await copy.query('ROLLBACK');
  }
}

/** Run before the observer is installed: these statements are not the migrations'. */
export async function measureFixedCosts(copy: pg.ClientBase): Promise<FixedCosts> {
  await copy.query(dropCalibrationTable());
  for (const q of createCalibrationTable()) await copy.query(q);
  try {
    const index: number[] = [];
    const rewrite: number[] = [];
    for (let i = 0; i < 3; i++) {
      index.push(await timed(copy, calibrationIndexBuild().text));
      rewrite.push(await timed(copy, calibrationRewrite().text));
    }
    return { indexMs: Math.round(Math.min(...index) * 10) / 10, rewriteMs: Math.round(Math.min(...rewrite) * 10) / 10 };
  } finally {
    await copy.query(dropCalibrationTable());
  }
}

export async function readParallelSettings(target: pg.ClientBase): Promise<ParallelSettings> {
  const s = await one<{ max_workers: number; maintenance_work_mem: number; min_parallel_table_scan_size: number; block_size: number }>(target, parallelIndexSettings());
  return { maxWorkers: s.max_workers, maintenanceWorkMemBytes: s.maintenance_work_mem, minParallelTableScanBytes: s.min_parallel_table_scan_size, blockSize: s.block_size };
}

/**
 * The workers PostgreSQL 15 plans for a B-tree build on a table of
 * `heapBytes` (plan_create_index_workers: one more per tripling of the heap
 * beyond min_parallel_table_scan_size, at most max_parallel_maintenance_workers,
 * and only while every participant gets 32 MB of maintenance_work_mem).
 */
export function plannedIndexWorkers(heapBytes: number, s: ParallelSettings): number {
  if (s.maxWorkers <= 0) return 0;
  const pages = heapBytes / s.blockSize;
  const threshold = Math.max(1, s.minParallelTableScanBytes / s.blockSize);
  if (pages < threshold) return 0;
  let workers = 1;
  for (let t = threshold; pages >= t * 3 && workers < 64; t *= 3) workers++;
  workers = Math.min(workers, s.maxWorkers);
  while (workers > 0 && s.maintenanceWorkMemBytes / (workers + 1) < 32 * 1024 * 1024) workers--;
  return workers;
}

/**
 * Amdahl's law with the heap scan and the sort runs (80% of a B-tree build)
 * shared among the leader and its workers: one worker sped a million-row
 * build up 1.7× on PostgreSQL 15 with two free cores (2.5 s → 1.5 s), less on
 * a busy server (1.2× at load 15). N log N already leans long (most of a
 * build is linear), which is the side a window estimate should err on.
 */
export const PARALLEL_FRACTION = 0.8;
export function parallelSpeedup(workers: number): number {
  return 1 / (1 - PARALLEL_FRACTION + PARALLEL_FRACTION / (workers + 1));
}

import type pg from 'pg';
import { exec } from '../../database/db.js';
import { setRunProgress, type RunProgress } from '../../database/sql/progress.js';
import type { StatementProgress } from './blockers.js';

export type { RunProgress } from '../../database/sql/progress.js';

const WRITE_EVERY_MS = 500;

const ratioOf = (p: { done: number; total: number }) => (p.total > 0 ? p.done / p.total : 0);

export type ProgressReporter = ReturnType<typeof progressReporter>;

/**
 * Keeps runs.progress up to date from the apply's callbacks, writing at most
 * every half second (and at once when the migration or phase changes), and
 * hands each written value to `onWrite` (the metrics). A statement's ETA is
 * its phase's elapsed time scaled by what is left of it; a backup or restore
 * brings its own, from the tool's byte rate.
 */
export function progressReporter(control: pg.Pool, runId: string, onWrite: (progress: RunProgress | null) => void) {
  let current: RunProgress | null = null;
  let phaseStarted = Date.now();
  let lastWrite = 0;
  let trailing: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();

  const write = (force: boolean) => {
    const wait = WRITE_EVERY_MS - (Date.now() - lastWrite);
    if (!force && wait > 0) {
      // The newest sample is written when the interval is up, even if no other one follows it.
      trailing ??= setTimeout(() => write(true), wait).unref();
      return;
    }
    clearTimeout(trailing);
    trailing = undefined;
    lastWrite = Date.now();
    const value = current;
    onWrite(value);
    chain = chain.then(() => exec(control, setRunProgress(runId, value))).catch(() => undefined);
  };

  const set = (next: RunProgress, extrapolate: boolean) => {
    const changed = !current || current.migration !== next.migration || current.phase !== next.phase;
    if (changed) phaseStarted = Date.now();
    if (extrapolate) {
      const elapsed = (Date.now() - phaseStarted) / 1000;
      const ratio = ratioOf(next);
      const estimable = ratio > 0 && ratio < 1 && elapsed > 0;
      next = { ...next, etaSeconds: estimable ? Math.round(elapsed * (1 - ratio) / ratio) : null };
    }
    current = next;
    write(changed);
  };

  return {
    migrationStarted(migration: string, index: number, total: number) {
      // Migrations differ too much in length to extrapolate from; a scan does not.
      set({ migration, phase: 'migrating', done: index, total, unit: 'migrations', etaSeconds: null }, false);
    },
    statement(p: StatementProgress | null) {
      if (!current || !p) return;
      const phase = `${p.command}: ${p.phase}`;
      // PostgreSQL re-targets the counters for the next phase before it names it (a btree build's
      // 'sorting live tuples' shows the scan's blocks done, then the tuples to load, 0 of n): within
      // a phase, a sample that changes what is counted or goes backwards is the next phase's, not progress.
      if (current.phase === phase && (current.unit !== p.unit || ratioOf(p) < ratioOf(current))) return;
      set({ migration: current.migration, phase, done: p.done, total: p.total, unit: p.unit, etaSeconds: null }, true);
    },
    /** A backup's or restore's sample (services/apply/backup-progress.ts), its ETA already worked out. */
    tool(p: RunProgress) {
      set(p, false);
    },
    /** What runs.progress holds (or is about to, within the write interval). */
    peek(): RunProgress | null {
      return current;
    },
    async clear() {
      current = null;
      write(true);
      await chain;
    },
  };
}

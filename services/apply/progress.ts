import type pg from 'pg';
import { exec } from '../../database/db.js';
import { setRunProgress } from '../../database/sql/progress.js';
import type { StatementProgress } from './blockers.js';

/** What GET /v1/runs/:id shows of a run's long step. */
export interface RunProgress {
  migration: string | null;
  phase: string;
  done: number;
  total: number;
  etaSeconds: number | null;
}

const WRITE_EVERY_MS = 500;

/**
 * Keeps runs.progress up to date from the apply's callbacks, writing at most
 * every half second (and at once when the migration or phase changes), and
 * hands the ratio to the metric. The ETA is the phase's elapsed time scaled by
 * what is left of it.
 */
export function progressReporter(control: pg.Pool, runId: string, onRatio: (ratio: number | null) => void) {
  let current: RunProgress | null = null;
  let phaseStarted = Date.now();
  let lastWrite = 0;
  let chain: Promise<unknown> = Promise.resolve();

  const write = (force: boolean) => {
    if (!force && Date.now() - lastWrite < WRITE_EVERY_MS) return;
    lastWrite = Date.now();
    const value = current;
    onRatio(value && value.total > 0 ? Math.min(1, value.done / value.total) : null);
    chain = chain.then(() => exec(control, setRunProgress(runId, value))).catch(() => undefined);
  };

  const set = (next: RunProgress) => {
    const changed = !current || current.migration !== next.migration || current.phase !== next.phase;
    if (changed) phaseStarted = Date.now();
    const elapsed = (Date.now() - phaseStarted) / 1000;
    const ratio = next.total > 0 ? next.done / next.total : 0;
    // Migrations differ too much in length to extrapolate from; a scan or a dump does not.
    const estimable = next.phase !== 'migrating' && ratio > 0 && ratio < 1 && elapsed > 0;
    current = { ...next, etaSeconds: estimable ? Math.round(elapsed * (1 - ratio) / ratio) : null };
    write(changed);
  };

  return {
    migrationStarted(migration: string, index: number, total: number) {
      set({ migration, phase: 'migrating', done: index, total, etaSeconds: null });
    },
    statement(p: StatementProgress | null) {
      if (!current || !p) return;
      set({ migration: current.migration, phase: `${p.command}: ${p.phase}`, done: p.done, total: p.total, etaSeconds: null });
    },
    backup(doneBytes: number, totalBytes: number) {
      set({ migration: null, phase: 'backup', done: doneBytes, total: totalBytes, etaSeconds: null });
    },
    async clear() {
      current = null;
      write(true);
      await chain;
    },
  };
}

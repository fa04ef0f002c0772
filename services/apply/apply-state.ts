import type { EtlRates, WatchWindow } from '../verify/watch.js';
import type { ApplyReport } from './apply-report.js';
import type { OwnPause, PauseState } from './workers.js';

/** Where the apply pipeline is: what a reconciler needs to know about a run whose process died. */
export type ApplyPhase = 'drift' | 'pause' | 'backup' | 'migrate' | 'verify' | 'resume' | 'watch';

/** runs.apply_state: what the run's work has done so far, so a failure, a rollback or a restart knows what to undo. */
export interface ApplyState {
  phase?: ApplyPhase;
  /** The run's migrations on the target (as far as this service knows). */
  applied?: string[];
  workersPaused?: boolean;
  workers?: PauseState;
  /** Every pause of the ETL this run made (each apply attempt, each rollback), so later work lifts them as its own. */
  pauses?: OwnPause[];
  /** The dump file pg_dump is writing: a reconciler removes it when the run died before it was verified. */
  pendingBackupFile?: string | null;
  /** The newest verified backup taken while none of the run's migrations was on the target: what restore puts back. */
  pristineBackupId?: string;
  /** The post-apply watch: its fixed window and baseline, so any replica can end it on time. */
  watch?: { window: WatchWindow; baseline: EtlRates | null };
  /** The apply report as far as the pipeline got, stored on entering monitoring (a replica taking over the watch completes it). */
  report?: ApplyReport;
  /** A rollback or restore in flight. */
  rollback?: RollbackState | null;
}

export interface RollbackState {
  requestId: string;
  mode: 'down' | 'restore';
  phase: 'pause' | 'down' | 'restore' | 'cleanup' | 'verify';
  workers?: PauseState;
  backupId?: string;
  /** Object ids of the backup's tables just before pg_restore: a committed restore recreates them, so they change. */
  restoreOids?: Record<string, string | null>;
}

import type { RehearsalResult } from './rehearsal.js';
import type { BackupEstimate } from './estimate/backup.js';
import type { HistoryCalibration } from './estimate/history.js';
import type { Acknowledgement } from './sql-analysis/types.js';
import type { DataRehearsalReport } from './data-rehearsal/types.js';

/** skip: the check does not apply to this target (not configured, e.g. no StarForge ETL); the detail says why. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface PreflightCheck {
  id: string;
  status: CheckStatus;
  detail: string;
}

/** One lint or check result; error findings (unacknowledged) fail the preflight. */
export interface Finding {
  /**
   * Stable across re-runs of preflight for the same digest (finding-id.ts):
   * what POST /v1/runs/:id/acknowledgements names. Set once the report is
   * complete; absent in reports stored before ids existed.
   */
  id?: string;
  rule: string;
  severity: 'error' | 'warning' | 'info';
  migration: string | null;
  statement: string | null;
  message: string;
  acknowledged: Acknowledgement | null;
}

export interface StatementEstimate {
  statement: string;
  lock: string;
  tables: string[];
  rewritesTable: boolean;
  buildsIndex: boolean;
  scansTable: boolean;
  /** Size-dependent time on the target, calibrated (see ImpactEstimate.calibration). */
  estimatedMs: number;
  /** How estimatedMs was derived (the sample or default rate, before the history ratio). */
  basis?: string;
}

export interface MigrationImpact {
  migration: string;
  transactional: boolean;
  rehearsalMs: number | null;
  /** The statements' size-dependent time as the model predicts it, before the history ratio. */
  workMs?: number;
  /** rehearsalMs plus the statements' calibrated estimates. */
  estimatedMs: number;
  strongestLock: string;
  statements: StatementEstimate[];
}

export interface TableImpact {
  table: string;
  exists: boolean;
  rows: number;
  /**
   * Where `rows` comes from: reltuples (fresh statistics), count (exact),
   * count-bounded (at least `rows`: the count stopped there), n_live_tup
   * (a count that timed out). Absent in older reports.
   */
  rowsSource?: 'reltuples' | 'count' | 'count-bounded' | 'n_live_tup';
  bytes: number;
}

export interface ImpactCalibration {
  /** Tables whose pages were sampled (timed read and sort) on the target. */
  sampledTables: string[];
  /** The measured-over-predicted ratio of this environment's earlier migrations, applied to every estimate; null: no history yet. */
  history: HistoryCalibration | null;
  /** One line for the report. */
  summary: string;
}

export interface ImpactEstimate {
  tables: TableImpact[];
  migrations: MigrationImpact[];
  /** The migrations alone (sum of their estimates). */
  migrationsEstimatedMs?: number;
  /** The pre-apply backup, in the total. */
  backup?: BackupEstimate | null;
  calibration?: ImpactCalibration;
  /** Backup plus migrations: what the scheduler fits into a window. */
  totalEstimatedMs: number;
  assumptions: string;
}

export interface PreflightReport {
  runId: string;
  environment: string;
  outcome: 'passed' | 'failed';
  scope: 'full';
  digest: string | null;
  migrations: Array<{ name: string; sha256: string }>;
  server: { version: string } | null;
  checks: PreflightCheck[];
  findings: Finding[];
  rehearsal: Omit<RehearsalResult, 'traces' | 'data'> | null;
  impact: ImpactEstimate | null;
  /** data-bearing rehearsal (issue 18): timings, held locks, growth and scaled estimates on the copy's rows (absent in older reports). */
  dataRehearsal?: DataRehearsalReport | null;
  notes: string[];
  startedAt: string;
  finishedAt: string;
}

import type { RehearsalResult } from './rehearsal.js';
import type { DataRehearsalReport } from './data-rehearsal/types.js';

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface PreflightCheck {
  id: string;
  status: CheckStatus;
  detail: string;
}

/** One lint or check result; error findings (unacknowledged) fail the preflight. */
export interface Finding {
  rule: string;
  severity: 'error' | 'warning' | 'info';
  migration: string | null;
  statement: string | null;
  message: string;
  acknowledged: { reason: string } | null;
}

export interface StatementEstimate {
  statement: string;
  lock: string;
  tables: string[];
  rewritesTable: boolean;
  buildsIndex: boolean;
  scansTable: boolean;
  estimatedMs: number;
}

export interface MigrationImpact {
  migration: string;
  transactional: boolean;
  rehearsalMs: number | null;
  estimatedMs: number;
  strongestLock: string;
  statements: StatementEstimate[];
}

export interface TableImpact {
  table: string;
  exists: boolean;
  rows: number;
  bytes: number;
}

export interface ImpactEstimate {
  tables: TableImpact[];
  migrations: MigrationImpact[];
  /** What the scheduler uses to decide whether the run fits a window. */
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

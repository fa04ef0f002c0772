// What GET /v1/runs/:id/rollback/plan returns, and what a rollback request
// and its approval carry.

export interface WindowState {
  /** The environment has maintenance windows (without them a rollback may run at any time). */
  hasWindows: boolean;
  open: boolean;
  current: { start: string; end: string } | null;
  next: { start: string; end: string } | null;
}

export interface AtRisk {
  kind: 'table' | 'column' | 'rows';
  /** The down migration doing it (null for a restore dropping tables created after the backup). */
  migration: string | null;
  table: string;
  column: string | null;
  exists: boolean;
  rows: number | null;
  rowsExact: boolean;
  bytes: number | null;
  statement: string | null;
  note: string | null;
}

export interface DownMigrationPlan {
  name: string;
  /** Its down migration ran cleanly in the preflight rehearsal and restored the schema its up found. */
  reversible: boolean;
  /** Why it is not reversible (absent when it is). */
  why?: string;
  /** The SQL its down migration ran in the rehearsal; null when that preflight did not capture it. */
  sql: string[] | null;
}

export interface DownPlan {
  /** In the order the rollback runs them (newest first). */
  migrations: DownMigrationPlan[];
  drops: AtRisk[];
}

export interface TableWrites {
  table: string;
  inserted: number;
  updated: number;
  deleted: number;
  /** The table did not exist (or was not counted) when the backup was taken. */
  sinceCreated: boolean;
}

export interface RestorePlan {
  backup: { id: string; method: string; createdAt: string; verifiedAt: string | null; ageSeconds: number; sizeBytes: number | null };
  writesSinceBackup: {
    /** false: the counters could not be compared (none recorded, statistics reset, target unreadable). */
    known: boolean;
    countersTakenAt: string | null;
    tables: TableWrites[];
    total: { inserted: number; updated: number; deleted: number };
    note: string | null;
  };
  /** Tables that are not in the backup: the restore drops them, with their rows. */
  tablesDropped: AtRisk[];
}

export interface RollbackPlan {
  runId: string;
  environment: string;
  mode: 'down' | 'restore';
  computedAt: string;
  /** sha256 over what would run and what it destroys (row counts by order of magnitude): what an approval names. */
  digest: string;
  /** Why the rollback cannot run as planned; empty when it can. */
  blockers: string[];
  window: WindowState;
  down: DownPlan | null;
  restore: RestorePlan | null;
  notes: string[];
}

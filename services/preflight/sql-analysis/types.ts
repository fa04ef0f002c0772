export type Severity = 'error' | 'warning';

export interface LintInput {
  /** Migration name, e.g. '1700000000800_add-power'. */
  migration: string;
  /** The SQL strings the migration runs, in order; one string may hold several statements. */
  statements: string[];
  /** False when the migration calls pgm.noTransaction(). */
  transactional: boolean;
  /** 'schema.table' (lower-case) of the tables that exist before this migration runs. */
  existingTables: ReadonlySet<string>;
  /** The migration file's text, searched for `lint-ack` comments. */
  source: string;
}

export interface LintFinding {
  rule: string;
  severity: Severity;
  migration: string;
  statement: string;
  message: string;
  acknowledged: { reason: string } | null;
}

export type LockMode =
  | 'ACCESS EXCLUSIVE'
  | 'EXCLUSIVE'
  | 'SHARE ROW EXCLUSIVE'
  | 'SHARE'
  | 'SHARE UPDATE EXCLUSIVE'
  | 'ROW EXCLUSIVE'
  | 'ROW SHARE'
  | 'ACCESS SHARE'
  | 'none';

export interface StatementImpact {
  statement: string;
  /** The parse node's type, e.g. 'AlterTableStmt'. */
  kind: string;
  tables: string[];
  /** The strongest lock the statement takes on `tables`. */
  lock: LockMode;
  rewritesTable: boolean;
  buildsIndex: boolean;
  scansTable: boolean;
}

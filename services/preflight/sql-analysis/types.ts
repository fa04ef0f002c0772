import type { RuleLevel } from './rule-catalog.js';
import type { SchemaFacts } from './schema-facts.js';

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
  /** The migration's file name (e.g. '1700000000800_add-power.sql'): advice fits what a .sql or a JS/TS file can do. Default: JS. */
  file?: string;
  /** The target's PostgreSQL major version (default 15): some rules depend on it (SET NOT NULL via a check needs 12+). */
  serverMajor?: number;
  /** What the catalog says before this migration (column types, NOT NULL checks, function volatility, materialized views). */
  facts?: SchemaFacts;
  /** With no catalog (static lint), treat every table the migration does not create as existing, with rows. */
  assumeTablesExist?: boolean;
  /** Per-rule levels overriding the catalog's defaults (style rules are off unless turned on here). */
  ruleLevels?: Readonly<Record<string, RuleLevel>>;
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

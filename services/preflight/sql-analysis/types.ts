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
  /** What earlier migrations of the same run did (lint-run.ts); absent: the migration is linted on its own. */
  run?: RunScope;
}

/**
 * The run-wide part of the lint state, handed from one migration to the next:
 * a relation an earlier migration of the run created is new whatever its name,
 * one it dropped is gone, and the session's search_path is what it SET.
 */
export interface RunScope {
  /** 'schema.name' of relations created earlier in the run (and still there). */
  created: ReadonlySet<string>;
  /** 'schema.name' of relations dropped earlier in the run (and not re-created). */
  dropped: ReadonlySet<string>;
  /** Indexes created earlier in the run ('schema.index' -> 'schema.table'). */
  indexes: ReadonlyMap<string, string>;
  /** The session's search_path as the migration starts (first schema first); null: `public`. */
  searchPath: readonly string[] | null;
  /** What RESET search_path goes back to: the target's own setting for the migration role. */
  defaultSearchPath: readonly string[] | null;
}

export interface LintFinding {
  rule: string;
  severity: Severity;
  migration: string;
  statement: string;
  message: string;
  acknowledged: Acknowledgement | null;
}

/**
 * Why a finding no longer fails preflight: a `lint-ack` comment in the
 * migration file (via 'file': no person or time recorded) or an approver's
 * acknowledgement through the API, bound to the run's digest (via 'api').
 */
export interface Acknowledgement {
  reason: string;
  by: string | null;
  at: string | null;
  via: 'api' | 'file';
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

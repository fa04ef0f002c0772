// Every rule the linter (and the rehearsal's observed effects) can report.
// Ids are stable: acknowledgements, per-environment settings and SARIF
// results refer to them. Each has a page docs/rules/<id>.md that the
// finding's message links to.

export type RuleLevel = 'error' | 'warning' | 'off';
export type RuleCategory = 'safety' | 'correctness' | 'style' | 'observed';

export interface RuleInfo {
  category: RuleCategory;
  /** The level a finding has unless an environment's settings say otherwise. */
  defaultLevel: RuleLevel;
  /** One line, for listings and SARIF's shortDescription. */
  title: string;
}

const safety = (title: string, defaultLevel: RuleLevel = 'error'): RuleInfo => ({ category: 'safety', defaultLevel, title });
const correctness = (title: string, defaultLevel: RuleLevel = 'error'): RuleInfo => ({ category: 'correctness', defaultLevel, title });
// Type and naming preferences: warnings, and only when an environment turns them on.
const style = (title: string): RuleInfo => ({ category: 'style', defaultLevel: 'off', title });
const observed = (title: string, defaultLevel: RuleLevel = 'error'): RuleInfo => ({ category: 'observed', defaultLevel, title });

export const RULE_CATALOG: Readonly<Record<string, RuleInfo>> = {
  'syntax-error': correctness('The statement does not parse as PostgreSQL 15 SQL'),
  // Locks and long scans on tables that already exist.
  'require-concurrent-index-creation': safety('CREATE INDEX without CONCURRENTLY on an existing table'),
  'require-concurrent-index-deletion': safety('DROP INDEX without CONCURRENTLY'),
  'require-concurrent-reindex': safety('REINDEX without CONCURRENTLY'),
  'require-concurrent-partition-detach': safety('DETACH PARTITION without CONCURRENTLY'),
  'require-concurrent-refresh': safety('REFRESH MATERIALIZED VIEW without CONCURRENTLY'),
  'ban-concurrent-index-creation-in-transaction': correctness('A CONCURRENTLY statement inside a transaction block fails'),
  'concurrently-in-multi-statement-query': correctness('A CONCURRENTLY statement sent in one query string with other statements fails'),
  'cannot-run-in-transaction': correctness('VACUUM, CREATE DATABASE and similar statements fail inside a transaction block'),
  'adding-not-nullable-field': safety('SET NOT NULL scans the table under ACCESS EXCLUSIVE'),
  'adding-required-field': correctness('ADD COLUMN NOT NULL without a default fails on a table with rows'),
  'adding-field-with-volatile-default': safety('ADD COLUMN with a volatile default rewrites the table'),
  'adding-foreign-key-constraint': safety('ADD COLUMN ... REFERENCES validates every row while locking both tables'),
  'adding-exclusion-constraint': safety('ADD CONSTRAINT ... EXCLUDE builds its index under ACCESS EXCLUSIVE'),
  'changing-column-type': safety('ALTER COLUMN TYPE rewrites the table'),
  'constraint-missing-not-valid': safety('A CHECK or FOREIGN KEY constraint without NOT VALID validates under lock'),
  'disallowed-unique-constraint': safety('ADD UNIQUE or PRIMARY KEY builds its index under ACCESS EXCLUSIVE'),
  'alter-enum-add-value': correctness('ALTER TYPE ... ADD VALUE in a transaction fails (before PostgreSQL 12) or makes the value unusable until commit'),
  'ban-vacuum-full': safety('VACUUM FULL rewrites the table under ACCESS EXCLUSIVE'),
  'ban-cluster': safety('CLUSTER rewrites the table under ACCESS EXCLUSIVE'),
  'ban-lock-table': safety('LOCK TABLE in a mode that blocks writes or reads'),
  'ban-set-tablespace': safety('SET TABLESPACE copies the relation under ACCESS EXCLUSIVE'),
  'ban-set-logged-unlogged': safety('SET LOGGED / SET UNLOGGED rewrites the table'),
  'ban-alter-domain-with-add-constraint': safety('ALTER DOMAIN ... ADD CONSTRAINT checks every column of the domain under lock'),
  'ban-create-domain-with-constraint': safety('A domain with a constraint is hard to change online', 'warning'),
  // Changes that break the running application or lose data.
  'ban-drop-column': safety('DROP COLUMN loses data and breaks readers'),
  'ban-drop-table': safety('DROP TABLE loses data and breaks readers'),
  'ban-drop-database': safety('DROP DATABASE in a migration'),
  'ban-drop-not-null': safety('DROP NOT NULL lets NULLs reach code that does not expect them', 'warning'),
  'renaming-column': safety('RENAME COLUMN breaks the running application'),
  'renaming-table': safety('RENAME TO breaks the running application'),
  'ban-truncate-cascade': safety('TRUNCATE ... CASCADE empties tables it does not name'),
  // How the migration is put together.
  'transaction-nesting': correctness('BEGIN, COMMIT or ROLLBACK inside a migration'),
  'ban-uncommitted-transaction': correctness('A transaction the migration opens and never ends'),
  'prefer-robust-stmts': safety('A statement outside a transaction that cannot be re-run after a partial failure', 'warning'),
  'ban-duplicate-column-assignments': correctness('A column assigned or defined twice in one statement'),
  'identifier-too-long': correctness('An identifier longer than 63 bytes is silently truncated', 'warning'),
  'create-extension': safety('CREATE EXTENSION needs privileges and availability on the target', 'warning'),
  'require-lock-timeout': safety('No lock_timeout before a statement that takes a lock (the service sets one when it applies)', 'off'),
  'require-statement-timeout': safety('No statement_timeout before a slow statement (the service sets one when it applies)', 'off'),
  // Type and naming preferences.
  'prefer-bigint-over-int': style('A 32-bit integer column can run out of values'),
  'prefer-bigint-over-smallint': style('A 16-bit integer column can run out of values'),
  'prefer-identity': style('serial types instead of identity columns'),
  'prefer-text-field': style('varchar(n) instead of text with a CHECK'),
  'prefer-timestamptz': style('timestamp without time zone'),
  'ban-char-field': style('char(n) pads and compares surprisingly'),
  'require-table-schema': style('A table name without its schema'),
  'require-enum-value-ordering': style('ADD VALUE without BEFORE or AFTER'),
  // What the rehearsal saw a migration do on the throw-away copy.
  'observed-blocking-lock': observed('The rehearsal saw a migration hold a lock that blocks writes or reads on a table with rows'),
  'observed-table-rewrite': observed('The rehearsal saw a migration rewrite a table with rows'),
  'observed-validation-scan': observed('The rehearsal saw a migration validate every row of a table with rows under a lock'),
  'observed-dropped-data': observed('The rehearsal saw a migration drop an object that holds data'),
  // What the rehearsal found about the run as a whole (services/preflight/rehearsal/findings.ts); irreversible-down is an error in production.
  'irreversible-down': observed('A down migration does not restore the schema its up found, or there is none', 'warning'),
  'cluster-global-object': observed('A migration creates, changes or removes a role, database, tablespace, subscription, event trigger or publication', 'warning'),
  'rehearsal-on-target-server': observed("The rehearsal ran on the target's own PostgreSQL server", 'warning'),
};

export const RULE_IDS: readonly string[] = Object.keys(RULE_CATALOG);

/** Where a rule's page lives in the repository; messages end with it. */
export function ruleDocPath(rule: string): string {
  return `docs/rules/${rule}.md`;
}

/** The level a rule's findings get: the override if any, else the catalog's default (unknown rules: as reported). */
export function ruleLevel(rule: string, overrides: Readonly<Record<string, RuleLevel>> | undefined): RuleLevel | undefined {
  return overrides?.[rule] ?? RULE_CATALOG[rule]?.defaultLevel;
}

/** Levels applied to findings made outside the linter (what the rehearsal observed): 'off' drops them, a level replaces the severity. */
export function withRuleLevels<T extends { rule: string; severity: string }>(findings: T[], overrides: Readonly<Record<string, RuleLevel>> | undefined): T[] {
  if (!overrides) return findings;
  return findings.flatMap((f) => {
    const level = overrides[f.rule];
    if (level === undefined) return [f];
    return level === 'off' ? [] : [{ ...f, severity: level }];
  });
}

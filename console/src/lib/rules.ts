// What each preflight rule means, for the approver reading a finding. Rules
// named after squawk's (https://squawkhq.com) link to its page as well.

export interface RuleDoc {
  rule: string;
  summary: string;
  squawk?: boolean;
}

export const RULES: RuleDoc[] = [
  { rule: 'adding-field-with-volatile-default', summary: 'Adding a column with a volatile default (now(), random()) rewrites the whole table under an ACCESS EXCLUSIVE lock. Add it without a default, then backfill.', squawk: true },
  { rule: 'adding-not-nullable-field', summary: 'SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock. Add a CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ skips the scan).', squawk: true },
  { rule: 'adding-required-field', summary: 'A NOT NULL column without a default fails on a table with rows. Follow add → backfill → enforce (README, Backfills).', squawk: true },
  { rule: 'ban-concurrent-index-creation-in-transaction', summary: 'CREATE INDEX CONCURRENTLY cannot run inside a transaction: call pgm.noTransaction() in that migration.', squawk: true },
  { rule: 'ban-drop-column', summary: 'Dropping a column breaks every reader still selecting it; deploy code that stops using it first, and know that down cannot bring the data back.', squawk: true },
  { rule: 'ban-drop-database', summary: 'Dropping a database from a migration is never what a schema change should do.', squawk: true },
  { rule: 'ban-drop-table', summary: 'Dropping a table loses its data for good; a rollback (down) cannot restore it, only the backup can.', squawk: true },
  { rule: 'ban-truncate-cascade', summary: 'TRUNCATE … CASCADE empties every table that references this one, often far more than intended.', squawk: true },
  { rule: 'changing-column-type', summary: 'Changing a column type usually rewrites the table and its indexes under an ACCESS EXCLUSIVE lock.', squawk: true },
  { rule: 'constraint-missing-not-valid', summary: 'Adding a CHECK or FOREIGN KEY validates every row while holding a lock. Add it NOT VALID, then VALIDATE CONSTRAINT separately.', squawk: true },
  { rule: 'create-extension', summary: 'Creating an extension needs privileges the service role may lack on the real target, and installs objects outside the migration\'s control.' },
  { rule: 'disallowed-unique-constraint', summary: 'ADD CONSTRAINT … UNIQUE builds its index while blocking writes. Build a unique index CONCURRENTLY, then add the constraint USING INDEX.', squawk: true },
  { rule: 'prefer-robust-stmts', summary: 'A non-transactional migration that fails half-way is re-run from the start: use IF NOT EXISTS / IF EXISTS so a re-run succeeds.', squawk: true },
  { rule: 'renaming-column', summary: 'Renaming a column breaks every running client that uses the old name.', squawk: true },
  { rule: 'renaming-table', summary: 'Renaming a table breaks every running client that uses the old name.', squawk: true },
  { rule: 'require-concurrent-index-creation', summary: 'CREATE INDEX without CONCURRENTLY blocks writes to the table for the whole build.', squawk: true },
  { rule: 'require-concurrent-index-deletion', summary: 'DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table.', squawk: true },
  { rule: 'rehearsal-failed', summary: 'The migration failed when applied to a throw-away copy of the target; it would fail on the target too. The migrations after it were not rehearsed; their SQL was linted from the files.' },
  { rule: 'rehearsal-down-failed', summary: 'The migration\'s down failed on the copy: a rollback (mode "down") of this run would fail the same way; only a restore could undo it.' },
  { rule: 'rehearsal-reapply-failed', summary: 'After up and down, applying the migration again failed: its down does not restore the state its up expects.' },
  { rule: 'irreversible-down', summary: 'The migration\'s down does not restore the schema its up found (or there is none): the finding names what it leaves or removes. A rollback (mode "down") of the run is refused; restore the backup instead.' },
  { rule: 'cluster-global-object', summary: 'The migration creates, changes or removes a role, database, tablespace, subscription, event trigger or publication: outside what a backup of the database or a rollback covers. The rehearsal removed what it created on its server.' },
  { rule: 'rehearsal-on-target-server', summary: 'The rehearsal ran on the target\'s own PostgreSQL server; set PREFLIGHT_DATABASE_URL to a dedicated rehearsal server.' },
  { rule: 'rehearsal-smoke-etl-failed', summary: 'The smoke ETL (one snapshot through the real ETL) failed on the rehearsed schema: the ETL would break after this change.' },
  { rule: 'content-changed', summary: 'A migration file changed after it was applied: the history on the target no longer matches the files.' },
  { rule: 'migration-order', summary: 'A pending migration sorts before one already applied: node-pg-migrate would refuse or apply it out of order.' },
  { rule: 'missing-migration-file', summary: 'The target records a migration that has no file in the migrations directory.' },
  { rule: 'unknown-to', summary: '"to" names a migration that is not pending in this environment.' },
];

export function ruleDoc(rule: string): RuleDoc | undefined {
  return RULES.find((r) => r.rule === rule);
}

export const squawkUrl = (rule: string) => `https://squawkhq.com/docs/${encodeURIComponent(rule)}`;

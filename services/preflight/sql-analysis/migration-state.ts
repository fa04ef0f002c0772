import { arr, flag, qualify, rec, relationName, str, type AstNode } from './ast.js';
import { droppedNames } from './statement-fields.js';

/**
 * What the migration has done so far, statement by statement: rules about
 * "existing tables" must stay quiet for a table this migration (or an earlier
 * migration of the same run) created, because an empty table is cheap to
 * lock, rewrite or index.
 */
export class MigrationState {
  private readonly existing: Set<string>;
  private readonly created: Set<string>;
  /** Indexes this migration (or an earlier one of the run) created, and their tables. */
  private readonly createdIndexes: Map<string, string>;
  /** 'table/constraint' added NOT VALID by this migration. */
  private readonly notValid = new Set<string>();

  /** Whether the next statement runs inside a transaction block (node-pg-migrate's, or one the migration opened). */
  transactional: boolean;

  constructor(existingTables: ReadonlySet<string>, transactional: boolean, createdTables: ReadonlySet<string> = new Set(), createdIndexes: ReadonlyMap<string, string> = new Map()) {
    this.transactional = transactional;
    // Parsed names are folded to lower case, so the catalog's must be too.
    this.existing = new Set([...existingTables].map((t) => t.toLowerCase()));
    this.created = new Set([...createdTables].map((t) => t.toLowerCase()));
    this.createdIndexes = new Map(createdIndexes);
  }

  /** Existed before the migration and was not dropped and re-created by it. */
  isExisting(table: string | undefined): table is string {
    return table !== undefined && this.existing.has(table) && !this.created.has(table);
  }

  isCreatedHere(table: string | undefined): boolean {
    return table !== undefined && this.created.has(table);
  }

  isIndexOnNewTable(index: string): boolean {
    const table = this.createdIndexes.get(index);
    return table !== undefined && !this.isExisting(table);
  }

  wasAddedNotValid(table: string, constraint: string): boolean {
    return this.notValid.has(`${table}/${constraint}`);
  }

  /** After COMMIT: a constraint added NOT VALID before it may be validated without holding the ADD's lock. */
  protected endTransaction(): void {
    this.notValid.clear();
  }

  /** The tables that exist now: those that existed and were not dropped, and those the migration created. */
  protected currentTables(): Set<string> {
    return new Set([...this.existing, ...this.created]);
  }

  /** Split the other way, for the next migration of a run: what existed before the run (under its current name), what the run created, its indexes. */
  protected runParts(): { existing: Set<string>; created: Set<string>; indexes: Map<string, string> } {
    return { existing: new Set(this.existing), created: new Set(this.created), indexes: new Map(this.createdIndexes) };
  }

  /** Records the statement's effect; call after the rules have looked at it. */
  apply(kind: string, stmt: AstNode): void {
    switch (kind) {
      case 'CreateStmt': {
        const table = relationName(rec(stmt, 'relation'));
        // CREATE TABLE IF NOT EXISTS of an existing table does nothing.
        if (table && !(flag(stmt, 'if_not_exists') && this.isExisting(table))) this.created.add(table);
        break;
      }
      case 'CreateTableAsStmt': {
        const table = relationName(rec(rec(stmt, 'into'), 'rel'));
        if (table && !(flag(stmt, 'if_not_exists') && this.isExisting(table))) this.created.add(table);
        break;
      }
      case 'DropStmt':
        if (str(stmt, 'removeType') === 'OBJECT_TABLE') {
          for (const table of droppedNames(stmt)) {
            this.existing.delete(table);
            this.created.delete(table);
          }
        }
        break;
      case 'RenameStmt':
        if (str(stmt, 'renameType') === 'OBJECT_TABLE') this.renameTable(rec(stmt, 'relation'), str(stmt, 'newname'));
        break;
      case 'AlterObjectSchemaStmt':
        // ALTER TABLE t SET SCHEMA s: the table follows its new name.
        if (str(stmt, 'objectType') === 'OBJECT_TABLE') this.moveTable(rec(stmt, 'relation'), str(stmt, 'newschema'));
        break;
      case 'IndexStmt': {
        const table = relationName(rec(stmt, 'relation'));
        const index = str(stmt, 'idxname');
        // An index lives in its table's schema.
        if (table && index) this.createdIndexes.set(qualify([table.split('.')[0] ?? 'public', index]) ?? index, table);
        break;
      }
      case 'AlterTableStmt':
        this.recordNotValid(stmt);
        break;
    }
  }

  private renameTable(relation: AstNode | undefined, newName: string | undefined): void {
    const from = relationName(relation);
    if (!from || !newName) return;
    const to = qualify([from.split('.')[0] ?? 'public', newName]);
    if (!to) return;
    if (this.created.delete(from)) this.created.add(to);
    if (this.existing.delete(from)) this.existing.add(to);
  }

  private moveTable(relation: AstNode | undefined, schema: string | undefined): void {
    const from = relationName(relation);
    const name = from?.split('.')[1];
    if (!from || !schema || !name) return;
    const to = qualify([schema, name]);
    if (!to) return;
    if (this.created.delete(from)) this.created.add(to);
    if (this.existing.delete(from)) this.existing.add(to);
  }

  private recordNotValid(stmt: AstNode): void {
    const table = relationName(rec(stmt, 'relation'));
    if (!table) return;
    for (const item of arr(stmt, 'cmds')) {
      const cmd = rec(item, 'AlterTableCmd');
      const constraint = rec(rec(cmd, 'def'), 'Constraint');
      const name = str(constraint, 'conname');
      if (str(cmd, 'subtype') === 'AT_AddConstraint' && name && flag(constraint, 'skip_validation')) {
        this.notValid.add(`${table}/${name}`);
      }
    }
  }
}

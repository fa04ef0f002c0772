import { arr, flag, names, nodesOf, qualify, rec, relationName, str, walk, type AstNode } from './ast.js';
import { alterColumnTarget, formatType, typeFromName } from './column-types.js';
import { MigrationState } from './migration-state.js';
import { moreVolatile, type NotNullCheck, type SchemaFacts, type Volatility } from './schema-facts.js';
import { droppedNames } from './statement-fields.js';
import type { RunScope } from './types.js';

export type FileType = 'sql' | 'js';

export interface LintStateOptions {
  existingTables: ReadonlySet<string>;
  transactional: boolean;
  fileType: FileType;
  serverMajor: number;
  facts: SchemaFacts | undefined;
  assumeTablesExist: boolean;
  run?: RunScope;
}

/**
 * Everything the rules beyond "is this table new?" need to know about the
 * migration so far: the file type (what advice is possible), the server
 * version, transaction blocks the migration opens itself, the search_path it
 * sets, and the column types, NOT NULL checks and functions it defines, on
 * top of what the catalog said before it ran.
 */
export class LintState extends MigrationState {
  readonly fileType: FileType;
  readonly serverMajor: number;
  /** node-pg-migrate wraps this migration in its own transaction (no pgm.noTransaction()). */
  readonly migrationTransactional: boolean;
  readonly facts: SchemaFacts | undefined;
  private readonly assumeExisting: boolean;
  private readonly dropped: Set<string>;
  /** The search_path in effect, first schema first; null: `public` (nothing known). */
  searchPath: string[] | null;
  /** What outlives the migration's transaction: the path without SET LOCAL, and what RESET goes back to. */
  private sessionSearchPath: string[] | null;
  private readonly defaultSearchPath: string[] | null;
  /** A BEGIN the migration itself sent and has not ended yet. */
  explicitBlockOpen = false;
  /** While rules look at a statement found inside a DO block's body (or its EXECUTE strings). */
  insideDo = false;
  /** Whether the DO block being looked at runs inside a transaction block (then COMMIT in it fails). */
  doInTransaction = false;
  /** Enum values added in the open transaction: PostgreSQL refuses to use them before commit. */
  readonly enumValuesInTransaction = new Set<string>();
  readonly timeoutsSet = { lock: false, statement: false };
  /** require-lock-timeout / require-statement-timeout report once per migration. */
  readonly timeoutsReported = { lock: false, statement: false };
  /** 'table/constraint' dropped earlier in the migration. */
  readonly droppedConstraints = new Set<string>();
  private readonly columnTypes = new Map<string, string>();
  private readonly notNullChecks = new Map<string, NotNullCheck>();
  private readonly functions = new Map<string, Volatility>();
  /** Tables on which the migration validated a constraint the linter has no definition of. */
  private readonly validatedUnknown = new Set<string>();

  constructor(options: LintStateOptions) {
    super(options.existingTables, options.transactional, options.run?.created, options.run?.indexes);
    this.dropped = new Set(options.run?.dropped ?? []);
    this.searchPath = options.run?.searchPath ? [...options.run.searchPath] : null;
    this.sessionSearchPath = this.searchPath;
    this.defaultSearchPath = options.run?.defaultSearchPath ? [...options.run.defaultSearchPath] : null;
    this.migrationTransactional = options.transactional;
    this.fileType = options.fileType;
    this.serverMajor = options.serverMajor;
    this.facts = options.facts;
    this.assumeExisting = options.assumeTablesExist;
  }

  override isExisting(table: string | undefined): table is string {
    if (super.isExisting(table)) return true;
    if (table === undefined || this.isCreatedHere(table) || this.dropped.has(table)) return false;
    return this.assumeExisting || (this.facts?.materializedViews.has(table) ?? false);
  }

  isMaterializedView(name: string): boolean {
    return this.facts?.materializedViews.has(name) ?? false;
  }

  /** format_type() of a column before this statement, if known. */
  columnType(table: string, column: string): string | undefined {
    const key = `${table}.${column.toLowerCase()}`;
    return this.columnTypes.get(key) ?? this.facts?.columnTypes.get(key);
  }

  /**
   * Whether a validated CHECK (column IS NOT NULL) lets SET NOT NULL skip its
   * scan (PostgreSQL 12+). 'assumed' when, without a catalog, the migration
   * validated a constraint on the table whose definition is unknown (its ADD
   * CONSTRAINT is in an earlier file that was not read).
   */
  notNullProven(table: string, column: string): 'yes' | 'assumed' | 'no' {
    const col = column.toLowerCase();
    const checks = [...(this.facts?.notNullChecks ?? new Map<string, NotNullCheck>()), ...this.notNullChecks];
    const merged = new Map(checks);
    for (const [key, check] of merged) if (key.startsWith(`${table}/`) && check.column === col && check.validated) return 'yes';
    return (this.facts === undefined || this.assumeExisting) && this.validatedUnknown.has(table) ? 'assumed' : 'no';
  }

  /** Volatility of a function by its name parts, from the migration's own CREATE FUNCTIONs, then the catalog. */
  functionVolatility(parts: string[]): Volatility | undefined {
    const key = parts.join('.').toLowerCase();
    const bare = parts[parts.length - 1]?.toLowerCase() ?? '';
    return this.functions.get(key) ?? this.functions.get(bare) ?? this.facts?.functions.get(key) ?? (parts.length > 1 ? undefined : this.facts?.functions.get(bare));
  }

  /** The tables that exist once the migration has run, for linting the next one. */
  tablesAfterMigration(): Set<string> {
    return new Set([...this.currentTables()].filter((t) => !this.dropped.has(t) || this.isCreatedHere(t)));
  }

  /** The next migration's run scope and pre-existing tables: the transaction ended, SET LOCAL with it. */
  runAfterMigration(): { existing: Set<string>; scope: RunScope } {
    const { existing, created, indexes } = this.runParts();
    return {
      existing: new Set([...existing].filter((t) => !this.dropped.has(t))),
      scope: {
        created: new Set([...created].filter((t) => !this.dropped.has(t))),
        dropped: new Set(this.dropped),
        indexes,
        searchPath: this.sessionSearchPath,
        defaultSearchPath: this.defaultSearchPath,
      },
    };
  }

  /** The catalog facts after the migration: the input facts plus what it defined. */
  factsAfterMigration(): SchemaFacts {
    const base = this.facts;
    // The input's maps are never written to: one the migration added nothing to is passed on as it is
    // (the function map holds every built-in function, thousands, for each migration of a run).
    const merged = <K, V>(from: ReadonlyMap<K, V> | undefined, own: Map<K, V>): Map<K, V> => {
      if (own.size === 0 && from) return from as Map<K, V>;
      const out = new Map(from ?? []);
      for (const [k, v] of own) out.set(k, v);
      return out;
    };
    return {
      columnTypes: merged(base?.columnTypes, this.columnTypes),
      notNullChecks: merged(base?.notNullChecks, this.notNullChecks),
      functions: merged(base?.functions, this.functions),
      materializedViews: base?.materializedViews ?? new Set(),
    };
  }

  override apply(kind: string, stmt: AstNode): void {
    super.apply(kind, stmt);
    switch (kind) {
      case 'TransactionStmt':
        this.transactionStatement(str(stmt, 'kind') ?? '');
        break;
      case 'VariableSetStmt':
        this.setting(stmt);
        break;
      case 'SelectStmt':
        walk(stmt, (k, body) => {
          if (k !== 'FuncCall' || names(arr(body, 'funcname')).pop()?.toLowerCase() !== 'set_config') return;
          const args = arr(body, 'args');
          const [name, value] = args.map((a) => str(rec(rec(a, 'A_Const'), 'sval'), 'sval'));
          const local = flag(rec(rec(args[2], 'A_Const'), 'boolval'), 'boolval');
          if (name !== undefined && value !== undefined) this.noteSetConfig(name, value, local);
        });
        break;
      case 'CreateStmt':
        this.recordCreatedColumns(stmt);
        this.undrop(relationName(rec(stmt, 'relation')));
        break;
      case 'CreateTableAsStmt':
        this.undrop(relationName(rec(rec(stmt, 'into'), 'rel')));
        break;
      case 'AlterTableStmt':
        this.recordAlterTable(stmt);
        break;
      case 'CreateFunctionStmt': {
        const volatility = nodesOf(arr(stmt, 'options'), 'DefElem').find((d) => str(d, 'defname') === 'volatility');
        const value = (str(rec(rec(volatility, 'arg'), 'String'), 'sval') ?? 'volatile') as Volatility;
        const parts = names(arr(stmt, 'funcname')).map((p) => p.toLowerCase());
        const bare = parts[parts.length - 1];
        if (bare) {
          this.functions.set(parts.join('.'), value);
          this.functions.set(bare, moreVolatile(this.functions.get(bare), value));
        }
        break;
      }
      case 'AlterEnumStmt':
        if (this.transactional && str(stmt, 'newVal') !== undefined && str(stmt, 'oldVal') === undefined) this.enumValuesInTransaction.add(str(stmt, 'newVal')!);
        break;
      case 'DropStmt': {
        const removeType = str(stmt, 'removeType');
        if (removeType === 'OBJECT_TABLE' || removeType === 'OBJECT_MATVIEW') for (const t of droppedNames(stmt)) this.dropped.add(t);
        break;
      }
      case 'RenameStmt':
        if (str(stmt, 'renameType') === 'OBJECT_TABLE') {
          const from = relationName(rec(stmt, 'relation'));
          if (from) this.dropped.add(from);
          const to = from && qualify([from.split('.')[0] ?? 'public', str(stmt, 'newname') ?? '']);
          if (to) this.dropped.delete(to);
        }
        break;
      case 'AlterObjectSchemaStmt':
        if (str(stmt, 'objectType') === 'OBJECT_TABLE') {
          const from = relationName(rec(stmt, 'relation'));
          const to = from && qualify([str(stmt, 'newschema') ?? '', from.split('.')[1] ?? '']);
          if (from && to) {
            this.dropped.add(from);
            this.dropped.delete(to);
          }
        }
        break;
    }
  }

  /** Created (again) after a drop: it exists, and is new. */
  private undrop(table: string | undefined): void {
    if (table && this.isCreatedHere(table)) this.dropped.delete(table);
  }

  private transactionStatement(kind: string): void {
    if (kind === 'TRANS_STMT_BEGIN' || kind === 'TRANS_STMT_START') {
      // Inside a block already, BEGIN only warns; outside, it opens one.
      if (!this.transactional) {
        this.transactional = true;
        this.explicitBlockOpen = true;
      }
    } else if (kind === 'TRANS_STMT_COMMIT' || kind === 'TRANS_STMT_ROLLBACK' || kind === 'TRANS_STMT_PREPARE') {
      // Ends the migration's own block, or node-pg-migrate's: what follows runs in autocommit.
      this.transactional = false;
      this.explicitBlockOpen = false;
      this.enumValuesInTransaction.clear();
      // SET LOCAL ends with the transaction.
      this.searchPath = this.sessionSearchPath;
      this.endTransaction();
    }
  }

  private setting(stmt: AstNode): void {
    const name = str(stmt, 'name')?.toLowerCase();
    const reset = str(stmt, 'kind') === 'VAR_RESET' || str(stmt, 'kind') === 'VAR_SET_DEFAULT';
    if (name === 'search_path') {
      const values = arr(stmt, 'args').map((a) => str(rec(rec(a, 'A_Const'), 'sval'), 'sval') ?? '');
      this.setSearchPath(reset ? this.defaultSearchPath : parseSearchPath(values.join(',')), flag(stmt, 'is_local'));
    } else if (name === 'lock_timeout' && !reset) {
      this.timeoutsSet.lock = true;
    } else if (name === 'statement_timeout' && !reset) {
      this.timeoutsSet.statement = true;
    }
  }

  private setSearchPath(path: string[] | null, local: boolean): void {
    // Outside a transaction block SET LOCAL does nothing (PostgreSQL only warns); a plain SET lasts for the session.
    if (local && !this.transactional) return;
    this.searchPath = path;
    if (!local) this.sessionSearchPath = path;
  }

  /** `SELECT set_config('search_path', 'a, public', is_local)` changes the path like SET (LOCAL) does. */
  noteSetConfig(name: string, value: string, local = false): void {
    if (name.toLowerCase() === 'search_path') this.setSearchPath(parseSearchPath(value), local);
    if (name.toLowerCase() === 'lock_timeout') this.timeoutsSet.lock = true;
    if (name.toLowerCase() === 'statement_timeout') this.timeoutsSet.statement = true;
  }

  private recordCreatedColumns(stmt: AstNode): void {
    const table = relationName(rec(stmt, 'relation'));
    if (!table) return;
    for (const col of nodesOf(arr(stmt, 'tableElts'), 'ColumnDef')) {
      const type = typeFromName(rec(col, 'typeName'));
      const name = str(col, 'colname')?.toLowerCase();
      if (type && name) this.columnTypes.set(`${table}.${name}`, formatType(type));
    }
  }

  private recordAlterTable(stmt: AstNode): void {
    const table = relationName(rec(stmt, 'relation'));
    if (!table) return;
    for (const cmd of nodesOf(arr(stmt, 'cmds'), 'AlterTableCmd')) {
      const subtype = str(cmd, 'subtype');
      if (subtype === 'AT_AddColumn') {
        const def = rec(rec(cmd, 'def'), 'ColumnDef');
        const type = typeFromName(rec(def, 'typeName'));
        const name = str(def, 'colname')?.toLowerCase();
        if (type && name) this.columnTypes.set(`${table}.${name}`, formatType(type));
      } else if (subtype === 'AT_AlterColumnType') {
        const { column, type } = alterColumnTarget(cmd);
        if (type) this.columnTypes.set(`${table}.${column}`, formatType(type));
      } else if (subtype === 'AT_AddConstraint') {
        const constraint = rec(rec(cmd, 'def'), 'Constraint');
        const name = str(constraint, 'conname')?.toLowerCase();
        if (name) this.droppedConstraints.delete(`${table}/${name}`);
        const column = notNullExpressionColumn(rec(constraint, 'raw_expr'));
        if (str(constraint, 'contype') === 'CONSTR_CHECK' && name && column) {
          this.notNullChecks.set(`${table}/${name}`, { column, validated: !flag(constraint, 'skip_validation') });
        }
      } else if (subtype === 'AT_ValidateConstraint') {
        const name = str(cmd, 'name')?.toLowerCase() ?? '';
        const key = `${table}/${name}`;
        const known = this.notNullChecks.get(key) ?? this.facts?.notNullChecks.get(key);
        if (known) this.notNullChecks.set(key, { ...known, validated: true });
        else this.validatedUnknown.add(table);
      } else if (subtype === 'AT_DropConstraint') {
        const name = str(cmd, 'name')?.toLowerCase() ?? '';
        this.droppedConstraints.add(`${table}/${name}`);
        this.notNullChecks.delete(`${table}/${name}`);
      }
    }
  }
}

/** `col IS NOT NULL` → 'col'. */
export function notNullExpressionColumn(expr: AstNode | undefined): string | undefined {
  const test = rec(expr, 'NullTest');
  if (str(test, 'nulltesttype') !== 'IS_NOT_NULL') return undefined;
  const fields = names(arr(rec(rec(test, 'arg'), 'ColumnRef'), 'fields'));
  return fields.length === 1 ? fields[0]!.toLowerCase() : undefined;
}

export function parseSearchPath(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim().replace(/^"(.*)"$/, '$1'))
    .filter((s) => s !== '' && s !== '$user')
    .map((s) => s.toLowerCase());
}

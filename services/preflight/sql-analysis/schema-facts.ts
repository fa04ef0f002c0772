// What the linter knows about the schema before a migration runs, beyond
// which tables exist: from the target's (or the rehearsal copy's) catalog in
// the service, from `sfm lint --database-url`, or from the earlier migration
// files a static `sfm lint` read first. Every field is optional knowledge: a
// missing entry means "unknown", and rules then stay on the safe side.

export type Volatility = 'immutable' | 'stable' | 'volatile';

export interface NotNullCheck {
  column: string;
  validated: boolean;
}

export interface SchemaFacts {
  /** 'schema.table.column' → format_type() text, e.g. 'character varying(20)'. */
  columnTypes: ReadonlyMap<string, string>;
  /** 'schema.table/constraint' → the column a CHECK (column IS NOT NULL) constraint covers. */
  notNullChecks: ReadonlyMap<string, NotNullCheck>;
  /** 'schema.name' and bare 'name' → volatility (the most volatile overload). */
  functions: ReadonlyMap<string, Volatility>;
  /** 'schema.name' of materialized views (they take indexes and locks like tables). */
  materializedViews: ReadonlySet<string>;
}

export function emptyFacts(): SchemaFacts {
  return { columnTypes: new Map(), notNullChecks: new Map(), functions: new Map(), materializedViews: new Set() };
}

const ORDER: readonly Volatility[] = ['immutable', 'stable', 'volatile'];

export function moreVolatile(a: Volatility | undefined, b: Volatility): Volatility {
  return a === undefined || ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a;
}

export function volatilityOf(code: string): Volatility {
  return code === 'i' ? 'immutable' : code === 's' ? 'stable' : 'volatile';
}

/** `CHECK ((col IS NOT NULL))` as pg_get_constraintdef() prints it → 'col' (lower-case), else undefined. */
export function notNullCheckColumn(definition: string): string | undefined {
  const match = /^CHECK \(\((?:"((?:[^"]|"")+)"|([a-z_][a-z0-9_$]*)) IS NOT NULL\)\)(?: NOT VALID)?$/i.exec(definition.trim());
  if (!match) return undefined;
  return (match[1]?.replace(/""/g, '"') ?? match[2])?.toLowerCase();
}

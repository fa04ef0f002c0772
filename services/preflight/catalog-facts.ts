import { one, rows, type Query, type Queryable } from '../../database/db.js';
import { lintGlobalFacts, lintRelationFacts, lintSystemFunctionVolatility } from '../../database/sql/lint-catalog.js';
import type { RelationSignature } from '../migrations/schema-fingerprint.js';
import { moreVolatile, notNullCheckColumn, volatilityOf, type NotNullCheck, type SchemaFacts, type Volatility } from './sql-analysis/schema-facts.js';

type FunctionRow = { schema: string; name: string; volatility: string };
type ColumnRow = { rel: number; key: string; type: string };
type CheckRow = { rel: number; table: string; name: string; validated: boolean; definition: string };

interface GlobalRows {
  functions: FunctionRow[];
  materializedViews: Array<{ name: string }>;
  sig: string;
}

interface RelationRows {
  columnTypes: ColumnRow[];
  checks: CheckRow[];
}

function addFunctions(into: Map<string, Volatility>, list: FunctionRow[]): void {
  for (const f of list) {
    const v = volatilityOf(f.volatility);
    into.set(`${f.schema}.${f.name}`, moreVolatile(into.get(`${f.schema}.${f.name}`), v));
    into.set(f.name, moreVolatile(into.get(f.name), v));
  }
}

/** One table's facts, kept while its fingerprint signature stands. */
interface Kept {
  sig: string;
  columns: ColumnRow[];
  checks: CheckRow[];
}

/**
 * Reads the catalog facts the linter uses from a database, again and again
 * (the rehearsal copy before every migration). The ~3,000 built-in functions
 * are read once per reader. Given the relation signatures the fingerprint
 * reader just read on the same database (nothing committed in between), a
 * table whose signature did not move keeps its column types and CHECK
 * constraints from the last read: deparsing those for every table before
 * every migration was most of a long history's rehearsal reads. A moved
 * schema or type signature (lintGlobalFacts) drops everything kept. Without
 * signatures every table is read. Queries are prepared (`name`): planning
 * them costs as much as running them; the session should use generic plans.
 */
export function schemaFactsReader(): (db: Queryable, signing?: readonly RelationSignature[] | Promise<readonly RelationSignature[]>) => Promise<SchemaFacts> {
  let system: Map<string, Volatility> | null = null;
  const kept = new Map<number, Kept>();
  let globalSig: string | null = null;
  let withUser: { key: string | null; functions: Map<string, Volatility> } = { key: null, functions: new Map() };
  return async (db, signing) => {
    // Prepared only for the rehearsal's repeated reads.
    const named = (query: Query, name: string): Query => (signing ? { ...query, name } : query);
    if (!system) {
      system = new Map();
      addFunctions(system, await rows<FunctionRow>(db, lintSystemFunctionVolatility()));
    }
    // What needs no signature is read while they may still be on their way (a promise: read beside this).
    const global = await one<GlobalRows>(db, named(lintGlobalFacts(), 'sfm-lint-global-facts'));
    const signed = await signing;
    const stale = signed?.filter((s) => kept.get(s.oid)?.sig !== s.sig) ?? null;
    const signedOids = signed?.map((s) => s.oid) ?? null;
    let fresh = await one<RelationRows>(db, named(lintRelationFacts(stale?.map((s) => s.oid) ?? null, signedOids), 'sfm-lint-relation-facts'));
    let freshOids = stale;
    // A moved global signature (rare): every table again.
    if (signed && global.sig !== globalSig && kept.size > 0) {
      kept.clear();
      freshOids = [...signed];
      fresh = await one<RelationRows>(db, named(lintRelationFacts(signed.map((s) => s.oid), signedOids), 'sfm-lint-relation-facts'));
    }
    const columns: ColumnRow[] = [];
    const checks: CheckRow[] = [];
    if (signed) {
      globalSig = global.sig;
      const present = new Set(signedOids);
      for (const oid of kept.keys()) if (!present.has(oid)) kept.delete(oid);
      // A table read again starts empty: its rows are all in this read.
      const bySig = new Map(freshOids!.map((s) => [s.oid, s.sig]));
      for (const [oid, sig] of bySig) kept.set(oid, { sig, columns: [], checks: [] });
      // Rows of a table without a signature are read every time, not kept.
      for (const c of fresh.columnTypes) (kept.get(c.rel)?.columns ?? columns).push(c);
      for (const c of fresh.checks) (kept.get(c.rel)?.checks ?? checks).push(c);
      for (const k of kept.values()) {
        columns.push(...k.columns);
        checks.push(...k.checks);
      }
    } else {
      columns.push(...fresh.columnTypes);
      checks.push(...fresh.checks);
    }
    const notNullChecks = new Map<string, NotNullCheck>();
    for (const c of checks) {
      const column = notNullCheckColumn(c.definition);
      if (column) notNullChecks.set(`${c.table}/${c.name}`, { column, validated: c.validated });
    }
    // Built-in functions and the user's, built again only when the user's change: copying thousands of built-in
    // entries before every migration cost more than the reads. The linter never writes to facts' maps (lint-state.ts).
    const functionsKey = JSON.stringify(global.functions);
    if (functionsKey !== withUser.key) {
      const built = new Map(system);
      addFunctions(built, global.functions);
      withUser = { key: functionsKey, functions: built };
    }
    const functions = withUser.functions;
    return {
      columnTypes: new Map(columns.map((r) => [r.key, r.type])),
      notNullChecks,
      functions,
      materializedViews: new Set(global.materializedViews.map((r) => r.name)),
    };
  };
}

/** The catalog facts the linter uses, read from a database once (`sfm lint --database-url`, a static lint's start). */
export async function readSchemaFacts(db: Queryable): Promise<SchemaFacts> {
  return schemaFactsReader()(db);
}

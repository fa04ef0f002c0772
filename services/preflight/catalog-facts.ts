import { one, rows, type Queryable } from '../../database/db.js';
import { lintSchemaFacts, lintSystemFunctionVolatility } from '../../database/sql/lint-catalog.js';
import { moreVolatile, notNullCheckColumn, volatilityOf, type NotNullCheck, type SchemaFacts, type Volatility } from './sql-analysis/schema-facts.js';

type FunctionRow = { schema: string; name: string; volatility: string };

interface FactRows {
  columnTypes: Array<{ key: string; type: string }>;
  checks: Array<{ table: string; name: string; validated: boolean; definition: string }>;
  functions: FunctionRow[];
  materializedViews: Array<{ name: string }>;
}

function addFunctions(into: Map<string, Volatility>, list: FunctionRow[]): void {
  for (const f of list) {
    const v = volatilityOf(f.volatility);
    into.set(`${f.schema}.${f.name}`, moreVolatile(into.get(`${f.schema}.${f.name}`), v));
    into.set(f.name, moreVolatile(into.get(f.name), v));
  }
}

/**
 * Reads the catalog facts the linter uses from a database, again and again
 * (the rehearsal copy before every migration): the ~3,000 built-in functions
 * are read once per reader, the rest in one round trip per read.
 */
export function schemaFactsReader(): (db: Queryable) => Promise<SchemaFacts> {
  let system: Map<string, Volatility> | null = null;
  return async (db) => {
    if (!system) {
      system = new Map();
      addFunctions(system, await rows<FunctionRow>(db, lintSystemFunctionVolatility()));
    }
    const facts = await one<FactRows>(db, lintSchemaFacts());
    const notNullChecks = new Map<string, NotNullCheck>();
    for (const c of facts.checks) {
      const column = notNullCheckColumn(c.definition);
      if (column) notNullChecks.set(`${c.table}/${c.name}`, { column, validated: c.validated });
    }
    // A copy: the next read must start from the built-in functions alone.
    const functions = new Map(system);
    addFunctions(functions, facts.functions);
    return {
      columnTypes: new Map(facts.columnTypes.map((r) => [r.key, r.type])),
      notNullChecks,
      functions,
      materializedViews: new Set(facts.materializedViews.map((r) => r.name)),
    };
  };
}

/** The catalog facts the linter uses, read from a database once (`sfm lint --database-url`, a static lint's start). */
export async function readSchemaFacts(db: Queryable): Promise<SchemaFacts> {
  return schemaFactsReader()(db);
}

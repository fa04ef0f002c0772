import { rows, type Queryable } from '../../database/db.js';
import { lintCheckConstraints, lintColumnTypes, lintFunctionVolatility, lintMaterializedViews } from '../../database/sql/lint-catalog.js';
import { moreVolatile, notNullCheckColumn, volatilityOf, type NotNullCheck, type SchemaFacts, type Volatility } from './sql-analysis/schema-facts.js';

/** The catalog facts the linter uses, read from a database (the rehearsal copy before a migration, or `sfm lint --database-url`). */
export async function readSchemaFacts(db: Queryable): Promise<SchemaFacts> {
  const columnTypes = new Map((await rows<{ key: string; type: string }>(db, lintColumnTypes())).map((r) => [r.key, r.type]));
  const notNullChecks = new Map<string, NotNullCheck>();
  for (const c of await rows<{ table: string; name: string; validated: boolean; definition: string }>(db, lintCheckConstraints())) {
    const column = notNullCheckColumn(c.definition);
    if (column) notNullChecks.set(`${c.table}/${c.name}`, { column, validated: c.validated });
  }
  const functions = new Map<string, Volatility>();
  for (const f of await rows<{ schema: string; name: string; volatility: string }>(db, lintFunctionVolatility())) {
    const v = volatilityOf(f.volatility);
    functions.set(`${f.schema}.${f.name}`, moreVolatile(functions.get(`${f.schema}.${f.name}`), v));
    functions.set(f.name, moreVolatile(functions.get(f.name), v));
  }
  const materializedViews = new Set((await rows<{ name: string }>(db, lintMaterializedViews())).map((r) => r.name));
  return { columnTypes, notNullChecks, functions, materializedViews };
}

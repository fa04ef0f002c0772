import { unwrap } from './ast.js';
import { statementEffect } from './locks.js';
import { splitStatements, type ParsedStatement } from './parse.js';
import { quoteStatement } from './statement-text.js';
import type { StatementImpact } from './types.js';

/** Per single statement: the tables it locks, how strongly, and the work that grows with their size. */
export async function analyzeStatements(statements: string[]): Promise<StatementImpact[]> {
  const impacts: StatementImpact[] = [];
  for (const sql of statements) {
    let parsed: ParsedStatement[];
    try {
      parsed = await splitStatements(sql);
    } catch {
      // These come from statements PostgreSQL already ran in the rehearsal,
      // so an unparsable one is a parser-version gap, not a broken migration.
      impacts.push({ statement: quoteStatement(sql), kind: 'Unparsed', tables: [], lock: 'none', rewritesTable: false, buildsIndex: false, scansTable: false });
      continue;
    }
    for (const { text, node } of parsed) {
      const [kind, body] = unwrap(node) ?? ['Unknown', {}];
      impacts.push({ statement: quoteStatement(text), kind, ...statementEffect(kind, body) });
    }
  }
  return impacts;
}

import { str, unwrap } from './ast.js';
import { trySplit } from './parse.js';

/** Extensions created by these statements (CREATE EXTENSION name), lower-case. */
export async function createdExtensions(statements: string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const sql of statements) {
    // A statement that does not parse is reported by the linter; here it just creates nothing.
    const split = await trySplit(sql);
    if (!split.ok) continue;
    for (const { node } of split.statements) {
      const [kind, body] = unwrap(node) ?? [];
      const name = kind === 'CreateExtensionStmt' ? str(body, 'extname') : undefined;
      if (name) found.add(name.toLowerCase());
    }
  }
  return [...found];
}

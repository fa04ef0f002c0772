import type pg from 'pg';
import { rows } from '../../../database/db.js';
import {
  addConstraintNotValid, analyzeTable, copyEnabledTriggers, copyForeignKeys, countRows, dropConstraint, emptySearchPath, setTrigger, validateConstraint,
} from '../../../database/sql/data-rehearsal.js';
import { Loader } from './psql-pipe.js';

// What every load into the schema-only copy does around the rows: foreign
// keys come off (a sample's rows do not satisfy them, and load order stops
// mattering) and go back NOT VALID; user triggers stay quiet while rows
// arrive. Then, outside the load's transaction, each key that was valid on
// the target is validated again where the copied rows allow it.

interface ForeignKey {
  ident: string;
  name: string;
  definition: string;
  validated: boolean;
}

interface Trigger {
  ident: string;
  name: string;
  enabled: 'O' | 'A';
}

export interface CopyShape {
  foreignKeys: ForeignKey[];
  triggers: Trigger[];
}

/** Read with an empty search_path, so every name in a key's definition comes schema-qualified (a dump's script empties it too). */
export async function readCopyShape(copy: pg.ClientBase): Promise<CopyShape> {
  await copy.query('BEGIN');
  try {
    await copy.query(emptySearchPath());
    const shape = { foreignKeys: await rows<ForeignKey>(copy, copyForeignKeys()), triggers: await rows<Trigger>(copy, copyEnabledTriggers()) };
    await copy.query('COMMIT');
    return shape;
  } catch (err) {
    await copy.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

const preamble = (shape: CopyShape): string => [
  ...shape.foreignKeys.map((fk) => dropConstraint(fk.ident, fk.name)),
  ...shape.triggers.map((t) => setTrigger(t.ident, t.name, 'DISABLE')),
  '',
].join('\n');

const postamble = (shape: CopyShape): string => [
  '',
  ...shape.foreignKeys.map((fk) => addConstraintNotValid(fk.ident, fk.name, fk.definition)),
  ...shape.triggers.map((t) => setTrigger(t.ident, t.name, t.enabled === 'A' ? 'ENABLE ALWAYS' : 'ENABLE')),
  '',
].join('\n');

/** One transaction on the copy: the preamble, what `body` writes (script and piped rows), the postamble. */
export async function loadInOneTransaction(copyUrl: string, secrets: string[], shape: CopyShape, timeoutMs: number, body: (loader: Loader) => Promise<void>): Promise<void> {
  const loader = new Loader(copyUrl, secrets, timeoutMs);
  try {
    await loader.write(preamble(shape));
    await body(loader);
    await loader.write(postamble(shape));
    await loader.finish();
  } catch (err) {
    loader.abort();
    throw err;
  }
}

/** Validates again the keys that were valid; returns those the copied rows do not satisfy ('schema.table.constraint'). */
export async function revalidate(copy: pg.ClientBase, shape: CopyShape): Promise<string[]> {
  const notValid: string[] = [];
  for (const fk of shape.foreignKeys) {
    if (!fk.validated) continue;
    try {
      await copy.query(validateConstraint(fk.ident, fk.name));
    } catch {
      notValid.push(`${fk.ident}.${fk.name}`);
    }
  }
  return notValid;
}

/** The planner's statistics for the loaded tables (a migration's UPDATE plans as on the target), and their exact row counts. */
export async function analyzeAndCount(copy: pg.ClientBase, idents: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const ident of idents) {
    await copy.query(analyzeTable(ident));
    const [row] = await rows<{ rows: number }>(copy, countRows(ident));
    counts.set(ident, row?.rows ?? 0);
  }
  return counts;
}

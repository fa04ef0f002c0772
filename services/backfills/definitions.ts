import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'libpg-query';
import type { StoredDefinition } from '../../database/sql/backfill-jobs.js';
import { notFound, unprocessable } from '../errors.js';

// A backfill is defined by one JSON file in the environment's backfills
// directory (default database/backfills); its name is the file name without
// `.json`. JSON, not a JavaScript module: a definition is data the service
// validates, never code it runs in its own process. The SQL in it is checked
// with the PostgreSQL parser: `batch` must be exactly one UPDATE, DELETE or
// INSERT using $1 and $2 (the first and last key of a batch, both inclusive)
// and no other parameter; `remaining` one SELECT without parameters.

export interface BackfillDefinition extends StoredDefinition {
  name: string;
  file: string;
}

export const DEFINITION_NAME = /^[a-z0-9][a-z0-9_-]{0,99}$/;
const KEYS = ['description', 'table', 'keyColumn', 'batch', 'remaining'];
const TABLE = /^([a-z_][a-z0-9_$]{0,62}\.)?[a-z_][a-z0-9_$]{0,62}$/;
const COLUMN = /^[a-z_][a-z0-9_$]{0,62}$/;
const MAX_FILE_BYTES = 64 * 1024;
const BATCH_KINDS = new Set(['UpdateStmt', 'DeleteStmt', 'InsertStmt']);

class DefinitionError extends Error {}

/** A string, or an array of lines (easier to read in JSON), joined with newlines. */
function sqlText(value: unknown, key: string): string {
  const text = Array.isArray(value) && value.every((v) => typeof v === 'string') ? value.join('\n') : value;
  if (typeof text !== 'string' || text.trim() === '') throw new DefinitionError(`"${key}" must be a non-empty string (or an array of lines)`);
  return text.trim().replace(/;\s*$/, '');
}

function walk(node: unknown, visit: (key: string, value: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit);
  } else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (value && typeof value === 'object' && !Array.isArray(value)) visit(key, value as Record<string, unknown>);
      walk(value, visit);
    }
  }
}

async function oneStatement(sql: string, key: string): Promise<{ kind: string; body: Record<string, unknown>; params: Set<number> }> {
  let parsed: { stmts?: Array<{ stmt?: Record<string, unknown> }> };
  try {
    parsed = (await parse(sql)) as typeof parsed;
  } catch (err) {
    throw new DefinitionError(`"${key}" is not valid SQL: ${(err as Error).message}`);
  }
  const stmts = parsed.stmts ?? [];
  if (stmts.length !== 1 || !stmts[0]?.stmt) throw new DefinitionError(`"${key}" must be exactly one statement (found ${stmts.length})`);
  const [kind, body] = Object.entries(stmts[0].stmt)[0] as [string, Record<string, unknown>];
  const params = new Set<number>();
  walk(body, (k, v) => {
    if (k === 'ParamRef' && typeof v.number === 'number') params.add(v.number);
  });
  return { kind, body, params };
}

function relationOf(body: Record<string, unknown>): string | null {
  const rel = body.relation as { relname?: string; schemaname?: string } | undefined;
  if (!rel?.relname) return null;
  return rel.schemaname ? `${rel.schemaname}.${rel.relname}` : rel.relname;
}

/** Validates a parsed definition file; throws DefinitionError saying what is wrong. */
export async function validateDefinition(name: string, file: string, raw: unknown, bytes: Buffer): Promise<BackfillDefinition> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DefinitionError('must be a JSON object');
  const d = raw as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!KEYS.includes(key)) throw new DefinitionError(`"${key}" is not a known field (known: ${KEYS.join(', ')})`);
  }
  if (typeof d.table !== 'string' || !TABLE.test(d.table)) throw new DefinitionError('"table" must be a lower-case table name, optionally schema-qualified');
  if (typeof d.keyColumn !== 'string' || !COLUMN.test(d.keyColumn)) throw new DefinitionError('"keyColumn" must be a lower-case column name');
  if (d.description !== undefined && typeof d.description !== 'string') throw new DefinitionError('"description" must be a string');
  const batch = sqlText(d.batch, 'batch');
  const remaining = d.remaining === undefined ? null : sqlText(d.remaining, 'remaining');

  const b = await oneStatement(batch, 'batch');
  if (!BATCH_KINDS.has(b.kind)) throw new DefinitionError(`"batch" must be an UPDATE, DELETE or INSERT statement, not ${b.kind}`);
  if (!b.params.has(1) || !b.params.has(2) || [...b.params].some((p) => p !== 1 && p !== 2)) {
    throw new DefinitionError('"batch" must use exactly the parameters $1 and $2 (the first and last key of a batch, both inclusive), e.g. WHERE id BETWEEN $1 AND $2');
  }
  if (b.kind !== 'InsertStmt') {
    const target = relationOf(b.body);
    if (target !== d.table && target !== d.table.split('.').pop()) {
      throw new DefinitionError(`"batch" changes ${target ?? 'another relation'}, not the definition's table ${d.table}`);
    }
  }
  if (remaining !== null) {
    const r = await oneStatement(remaining, 'remaining');
    if (r.kind !== 'SelectStmt') throw new DefinitionError(`"remaining" must be a SELECT returning one number, not ${r.kind}`);
    if (r.params.size) throw new DefinitionError('"remaining" takes no parameters');
  }
  return {
    name,
    file,
    description: typeof d.description === 'string' ? d.description : null,
    table: d.table,
    keyColumn: d.keyColumn,
    batch,
    remaining,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

async function readDefinition(dir: string, name: string): Promise<BackfillDefinition> {
  const file = `${name}.json`;
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw unprocessable(`There is no backfill named "${name}": no ${file} in the environment's backfills directory.`, { name });
    throw unprocessable(`The backfill "${name}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, { name });
  }
  if (bytes.length > MAX_FILE_BYTES) throw unprocessable(`The backfill "${name}" is larger than ${MAX_FILE_BYTES} bytes.`, { name });
  try {
    let raw: unknown;
    try {
      raw = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new DefinitionError(`is not valid JSON (${(err as Error).message})`);
    }
    return await validateDefinition(name, file, raw, bytes);
  } catch (err) {
    if (err instanceof DefinitionError) throw unprocessable(`The backfill definition ${file} is invalid: ${err.message}.`, { name });
    throw err;
  }
}

/** The definition named `name` in `dir`; 422 when there is none or it is invalid. */
export async function loadDefinition(dir: string, name: string): Promise<BackfillDefinition> {
  if (!DEFINITION_NAME.test(name)) throw unprocessable(`"${name}" is not a backfill name (lower-case letters, digits, "-" and "_").`, { name });
  return readDefinition(dir, name);
}

export interface DefinitionListing {
  name: string;
  file: string;
  valid: boolean;
  error: string | null;
  definition: BackfillDefinition | null;
}

/** Every *.json in `dir`, valid or not (an invalid one says why). */
export async function listDefinitions(dir: string): Promise<DefinitionListing[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('The environment\'s backfills directory does not exist.');
    throw err;
  }
  const out: DefinitionListing[] = [];
  for (const file of entries.filter((f) => f.endsWith('.json')).sort()) {
    const name = file.slice(0, -'.json'.length);
    if (!DEFINITION_NAME.test(name)) continue;
    try {
      const definition = await readDefinition(dir, name);
      out.push({ name, file, valid: true, error: null, definition });
    } catch (err) {
      out.push({ name, file, valid: false, error: (err as Error).message, definition: null });
    }
  }
  return out;
}

/** What a job stores of its definition. */
export function storedDefinition(d: BackfillDefinition): StoredDefinition {
  return { table: d.table, keyColumn: d.keyColumn, batch: d.batch, remaining: d.remaining, sha256: d.sha256, description: d.description };
}

import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';

export interface MigrationFile {
  name: string;
  file: string;
  sha256: string;
  /** The bytes `sha256` was computed from: what a sealed snapshot stores, never read twice. */
  bytes: Buffer;
}

// Same order as node-pg-migrate's loader: numeric prefix first (17-digit
// prefixes are UTC timestamps), then a numeric-aware locale compare.
function numericPrefix(name: string): number {
  const prefix = /^(\d+)/.exec(name)?.[1];
  if (!prefix) return Number.NaN;
  if (prefix.length === 17) {
    const iso = `${prefix.slice(0, 4)}-${prefix.slice(4, 6)}-${prefix.slice(6, 8)}T${prefix.slice(8, 10)}:${prefix.slice(10, 12)}:${prefix.slice(12, 14)}.${prefix.slice(14)}Z`;
    return new Date(iso).valueOf();
  }
  return Number(prefix);
}

export function compareMigrationNames(a: string, b: string): number {
  return (
    numericPrefix(a) - numericPrefix(b) ||
    a.localeCompare(b, undefined, { usage: 'sort', numeric: true, sensitivity: 'variant', ignorePunctuation: true })
  );
}

/** The migration files of a directory, ordered as node-pg-migrate runs them, with their sha256. */
export async function listMigrationFiles(dir: string): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.'))
    .map((e) => e.name);
  const bad = files.find((f) => Number.isNaN(numericPrefix(f)));
  if (bad) throw new Error(`migration file "${bad}" has no numeric prefix`);
  files.sort(compareMigrationNames);
  return Promise.all(
    files.map(async (f) => {
      const bytes = await readFile(join(dir, f));
      return { name: basename(f, extname(f)), file: f, sha256: createHash('sha256').update(bytes).digest('hex'), bytes };
    }),
  );
}

/** sha256 over the ordered names and content hashes: what approvers approve. */
export function digestOf(migrations: Array<{ name: string; sha256: string }>): string {
  const hash = createHash('sha256');
  for (const m of migrations) hash.update(`${m.name}\0${m.sha256}\n`);
  return hash.digest('hex');
}

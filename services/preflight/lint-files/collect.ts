import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { compareMigrationNames } from '../../migrations/files.js';

// The migration files `sfm lint PATHS...` names: files as given, directories
// as their migration files, all in the order node-pg-migrate runs them.

const SCRIPT = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);

export interface MigrationSource {
  /** The path as the user gave it (or directory + name): what findings point at. */
  path: string;
  /** Migration name: the file name without its extension. */
  name: string;
  kind: 'sql' | 'script';
  text: string;
}

export class LintInputError extends Error {}

function kindOf(file: string): MigrationSource['kind'] | null {
  const ext = extname(file).toLowerCase();
  if (ext === '.sql') return 'sql';
  return SCRIPT.has(ext) ? 'script' : null;
}

export async function collectMigrations(paths: string[]): Promise<MigrationSource[]> {
  const files: string[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new LintInputError(`${path}: no such file or directory`);
    }
    if (info.isDirectory()) {
      const entries = (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.') && kindOf(e.name));
      files.push(...entries.map((e) => join(path, e.name)));
    } else {
      if (!kindOf(path)) throw new LintInputError(`${path}: not a migration file (.sql, .js, .mjs, .cjs, .ts, .mts or .cts)`);
      files.push(path);
    }
  }
  const unique = [...new Set(files)];
  const names = new Map(unique.map((f) => [f, basename(f, extname(f))]));
  const seen = new Map<string, string>();
  for (const [file, name] of names) {
    const other = seen.get(name);
    if (other) throw new LintInputError(`${file} and ${other} are both migration "${name}"`);
    seen.set(name, file);
  }
  unique.sort((a, b) => compareMigrationNames(names.get(a)!, names.get(b)!));
  return Promise.all(unique.map(async (path) => ({ path, name: names.get(path)!, kind: kindOf(path)!, text: await readFile(path, 'utf8') })));
}

/** The SQL a .sql migration runs up: node-pg-migrate's `-- Up Migration` section, or the whole file. */
export function upSection(text: string): string {
  const up = text.search(/^\s*--[\s-]*up\s+migration/im);
  const down = text.search(/^\s*--[\s-]*down\s+migration/im);
  if (up < 0) return down < 0 ? text : text.slice(0, down);
  return text.slice(up, down > up ? down : undefined);
}

/** 1-based line of a statement in its file: where its first line appears, else 1. */
export function lineOf(text: string, statement: string): number {
  const lines = statement.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const probe of [lines[0], lines[0]?.slice(0, 40)]) {
    if (!probe) continue;
    const at = text.indexOf(probe);
    if (at >= 0) return text.slice(0, at).split('\n').length;
  }
  // SQL a JS builder generated appears nowhere in the file: point at the up function.
  const up = text.search(/\b(exports\.up|export\s+(const|async\s+function|function)\s+up|module\.exports)\b/);
  return up >= 0 ? text.slice(0, up).split('\n').length : 1;
}

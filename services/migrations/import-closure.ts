import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Files node-pg-migrate hands to the script loader; their imports are followed. */
export const SCRIPT_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

// jiti's own resolution order (its `extensions` default), then JSON; what an
// extension-less `import '../lib/helper'` loads when the migration runs.
const RESOLVE_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.tsx', '.mts', '.cts', '.json'];
// TypeScript sources import their siblings by the emitted name ('./x.js' for x.ts).
const TS_SOURCE_FOR: Record<string, string[]> = { '.js': ['.ts', '.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'] };

// A snapshot lives in the control database: bound what one run may seal.
export const MAX_SNAPSHOT_FILES = 500;
export const MAX_SNAPSHOT_BYTES = 32 * 1024 * 1024;

export interface SealedFile {
  /** Path relative to the closure root, '/'-separated. */
  path: string;
  sha256: string;
  bytes: Buffer;
}

export interface ClosureProblem {
  severity: 'error' | 'warning';
  /** The migration whose import chain reached the file. */
  migration: string;
  /** The file holding the import, relative to the closure root. */
  importer: string;
  specifier: string;
  message: string;
}

export interface ClosureInput {
  /** Everything a migration may import lives under here (see docs/sealed-snapshot.md). */
  root: string;
  migrationsDir: string;
  migrations: Array<{ name: string; file: string; bytes: Buffer }>;
}

export interface Closure {
  /** Every local module the migrations import, transitively, sorted by path. */
  modules: SealedFile[];
  problems: ClosureProblem[];
}

type PreProcess = (text: string) => string[];
let preProcess: Promise<PreProcess> | null = null;

/**
 * TypeScript's import pre-processor: the scanner tsc itself uses to list a
 * file's imports. It understands every syntax the migration loader (jiti)
 * accepts: ESM import/export-from, `require()`, `import x = require()`,
 * `import()` with a literal; it skips strings and comments. Loaded on first
 * use, so the service does not pay for TypeScript at start-up.
 */
function importParser(): Promise<PreProcess> {
  preProcess ??= import('typescript').then(({ default: ts }) => (text: string) => ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName));
  return preProcess;
}

// Parsed for further imports; any other file is sealed as bytes only.
const PARSED_EXTENSIONS = [...SCRIPT_EXTENSIONS, '.tsx'];
const byPath = (a: SealedFile, b: SealedFile) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const toPosix = (path: string) => path.split(sep).join('/');
const isInside = (parent: string, child: string) => {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
};

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function resolveLocal(base: string): Promise<string | null> {
  const ext = extname(base);
  const candidates = [base, ...(TS_SOURCE_FOR[ext] ?? []).map((e) => base.slice(0, -ext.length) + e), ...RESOLVE_EXTENSIONS.map((e) => base + e), ...RESOLVE_EXTENSIONS.map((e) => join(base, `index${e}`))];
  for (const candidate of candidates) if (await isFile(candidate)) return candidate;
  return null;
}

type Kind = 'relative' | 'package' | 'ignored' | { refused: string };

function classify(specifier: string): Kind {
  if (specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../')) return 'relative';
  if (specifier.startsWith('#')) return { refused: 'is a package.json subpath import (#…): it resolves to a local file the snapshot cannot follow; import the file by a relative path' };
  if (isAbsolute(specifier) || /^file:/i.test(specifier)) return { refused: 'is an absolute path: it would load the file from disk, not from the sealed snapshot; import it by a relative path' };
  if (/^(node|data):/i.test(specifier)) return 'ignored';
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) return { refused: 'is a URL: only local files and packages can be imported by a migration' };
  return 'package';
}

/**
 * The local modules a set of migrations imports, followed transitively, with
 * their bytes as read now. Relative imports are resolved the way the loader
 * resolves them; packages (bare names, `node:`) are left to node_modules and
 * are not part of the snapshot. A file outside the closure root, under a
 * node_modules directory or at the top of the migrations directory (where
 * node-pg-migrate would take it for a migration) is an error naming it.
 */
export async function importClosure(input: ClosureInput): Promise<Closure> {
  const parse = await importParser();
  const root = resolve(input.root);
  const realRoot = await realpath(root).catch(() => root);
  const migrationsDir = resolve(input.migrationsDir);
  const modules = new Map<string, SealedFile>();
  const problems: ClosureProblem[] = [];
  let bytesTotal = input.migrations.reduce((n, m) => n + m.bytes.length, 0);
  const queue: Array<{ abs: string; bytes: Buffer; migration: string }> = input.migrations
    .filter((m) => SCRIPT_EXTENSIONS.includes(extname(m.file).toLowerCase()))
    .map((m) => ({ abs: join(migrationsDir, m.file), bytes: m.bytes, migration: m.name }));

  while (queue.length) {
    const { abs, bytes, migration } = queue.shift()!;
    const importer = toPosix(relative(root, abs));
    const problem = (severity: ClosureProblem['severity'], specifier: string, message: string) => problems.push({ severity, migration, importer, specifier, message });
    for (const specifier of new Set(parse(bytes.toString('utf8')))) {
      const kind = classify(specifier);
      if (kind === 'package' || kind === 'ignored') continue;
      if (kind !== 'relative') {
        problem('error', specifier, `${importer} imports "${specifier}", which ${kind.refused}.`);
        continue;
      }
      const target = await resolveLocal(resolve(dirname(abs), specifier));
      if (!target) {
        // A real import of a missing file fails the rehearsal (it runs from the snapshot); this may also be text that only looks like one.
        problem('warning', specifier, `${importer} imports "${specifier}", which resolves to no file; it is not in the sealed snapshot, so the migration cannot load it when it runs.`);
        continue;
      }
      const rel = toPosix(relative(root, target));
      if (modules.has(rel)) continue;
      const outside = !isInside(root, target) ? target : !isInside(realRoot, await realpath(target)) ? `${target} (through a symbolic link to ${await realpath(target)})` : null;
      if (outside) {
        problem('error', specifier, `${importer} imports "${specifier}", which resolves to ${outside}: outside the snapshot's closure root ${root}. Only files under ${root} can be sealed with a migration; move the file there.`);
        continue;
      }
      if (rel.split('/').includes('node_modules')) {
        problem('error', specifier, `${importer} imports "${specifier}", which resolves to ${rel} inside a node_modules directory; import the package by its name (packages are not sealed).`);
        continue;
      }
      if (dirname(target) === migrationsDir) {
        problem('error', specifier, `${importer} imports "${specifier}", which resolves to ${rel} at the top of the migrations directory, where every file is a migration to node-pg-migrate; move shared code into a subdirectory or beside the directory.`);
        continue;
      }
      const content = await readFile(target);
      bytesTotal += content.length;
      if (modules.size + input.migrations.length >= MAX_SNAPSHOT_FILES || bytesTotal > MAX_SNAPSHOT_BYTES) {
        problem('error', specifier, `The migrations and the modules they import exceed what one sealed snapshot may hold (${MAX_SNAPSHOT_FILES} files, ${MAX_SNAPSHOT_BYTES / 1024 / 1024} MiB); ${rel} was not sealed.`);
        return { modules: [...modules.values()].sort(byPath), problems };
      }
      modules.set(rel, { path: rel, sha256: sha256(content), bytes: content });
      if (PARSED_EXTENSIONS.includes(extname(target).toLowerCase())) queue.push({ abs: target, bytes: content, migration });
    }
  }
  return { modules: [...modules.values()].sort(byPath), problems };
}

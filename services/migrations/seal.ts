import { createHash } from 'node:crypto';
import { dirname, posix, relative, resolve, sep } from 'node:path';
import type { EnvironmentConfig } from '../environments/model.js';
import { importClosure, type ClosureProblem, type SealedFile } from './import-closure.js';
import type { PendingSet } from './pending.js';

export interface SnapshotMigration extends SealedFile {
  name: string;
  /** The file name inside the migrations directory (with its extension: it picks the loader). */
  file: string;
}

/** What a run's approval covers: the exact bytes of its migrations and of every local module they import. */
export interface SnapshotContent {
  /** The closure root when the snapshot was sealed (absolute). */
  root: string;
  /** The migrations directory relative to the root, '/'-separated. */
  migrationsPath: string;
  /** In the order they run. */
  migrations: SnapshotMigration[];
  /** Sorted by path. */
  modules: SealedFile[];
  digest: string;
}

export interface SealedPendingSet {
  /** The pending set with `digest` replaced by the snapshot's digest. */
  set: PendingSet;
  snapshot: SnapshotContent;
  /** Imports that could not be sealed; an error one fails preflight. */
  problems: ClosureProblem[];
}

/**
 * The directory every local module a migration imports must live under: the
 * one holding the migrations directory (`database/` for `database/migrations`),
 * so `import '../lib/helper.mjs'` seals and `../../elsewhere/x.js` does not.
 */
export const closureRootOf = (migrationsDir: string): string => dirname(resolve(migrationsDir));

const toPosix = (path: string) => path.split(sep).join('/');

/**
 * sha256 over every snapshot file's name and content hash: migrations in run
 * order, then modules by path. What approvals bind to: renaming, editing,
 * adding or dropping any file of the snapshot changes it. Paths are taken
 * relative to the migrations directory ('../lib/helper.mjs'), so the same
 * files give the same digest whatever the directory is called.
 */
export function snapshotDigest(migrationsPath: string, migrations: ReadonlyArray<{ file: string; sha256: string }>, modules: ReadonlyArray<{ path: string; sha256: string }>): string {
  const hash = createHash('sha256').update('starforge-sealed-snapshot-v1\n');
  for (const m of migrations) hash.update(`migration\0${m.file}\0${m.sha256}\n`);
  const named = modules.map((m) => ({ name: posix.relative(migrationsPath || '.', m.path), sha256: m.sha256 }));
  for (const m of named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) hash.update(`module\0${m.name}\0${m.sha256}\n`);
  return hash.digest('hex');
}

/**
 * Seals a pending set: the bytes its migrations were hashed from (never read
 * again) plus the local modules they import, with the digest over all of them.
 */
export async function sealPendingSet(env: EnvironmentConfig, set: PendingSet): Promise<SealedPendingSet> {
  const root = closureRootOf(env.migrationsDir);
  const migrationsPath = toPosix(relative(root, resolve(env.migrationsDir)));
  const at = (file: string) => (migrationsPath ? `${migrationsPath}/${file}` : file);
  const migrations: SnapshotMigration[] = set.pending.map((m) => ({ name: m.name, file: m.file, path: at(m.file), sha256: m.sha256, bytes: m.bytes }));
  const { modules, problems } = await importClosure({ root, migrationsDir: env.migrationsDir, migrations: set.pending });
  const digest = snapshotDigest(migrationsPath, migrations, modules);
  return { set: { ...set, digest }, snapshot: { root, migrationsPath, migrations, modules, digest }, problems };
}

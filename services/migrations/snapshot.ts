import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Queryable } from '../../database/db.js';
import { MigrationChangedError, verifiedLoaders } from './loader.js';
import { mapLimit } from './map-limit.js';
import { loadSnapshot } from './snapshot-store.js';
import type { MigrationSource, SourceOpener } from './source.js';

export interface MaterializedSnapshot extends MigrationSource {
  runId: string;
  digest: string;
  /** The run-private copy of the closure root. */
  root: string;
  migrations: Array<{ name: string; file: string; sha256: string }>;
  modules: Array<{ path: string; sha256: string }>;
  /** Same as close(). */
  cleanup(): Promise<void>;
}

/** Where run-private copies are written, under DATA_DIR. */
export const snapshotsDir = (dataDir: string): string => join(dataDir, 'sealed-runs');

// Marks the copies this process wrote, so a sweep can tell a dead process's
// leftovers (kill -9) from a live replica's copy on a shared DATA_DIR.
const PROCESS_TOKEN = randomUUID();
const OWNER_FILE = 'owner.json';
const TREE = 'tree';
const UNOWNED_GRACE_MS = 60 * 60 * 1000;
const FILE_CONCURRENCY = 16;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// null while another process is still writing it (or never did): then only its age counts.
async function readOwner(dir: string): Promise<{ host?: string; pid?: number; token?: string } | null> {
  try {
    return JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as { host?: string; pid?: number; token?: string };
  } catch {
    return null;
  }
}

/** Removes copies left by processes of this host that are gone (or an earlier life of this pid). */
async function sweep(base: string): Promise<void> {
  const entries = await readdir(base).catch(() => [] as string[]);
  for (const entry of entries) {
    const dir = join(base, entry);
    const owner = await readOwner(dir);
    const stale = owner
      ? owner.host === hostname() && owner.token !== PROCESS_TOKEN && typeof owner.pid === 'number' && (owner.pid === process.pid || !alive(owner.pid))
      : Date.now() - ((await stat(dir).catch(() => null))?.mtimeMs ?? Date.now()) > UNOWNED_GRACE_MS;
    if (stale) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The node_modules Node would have found for the original tree: bare imports still resolve from the copy. */
async function packagesFor(sourceRoot: string): Promise<string | null> {
  for (let dir = sourceRoot; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules');
    if ((await stat(candidate).catch(() => null))?.isDirectory()) return candidate;
    if (dirname(dir) === dir) return null;
  }
}

/** Every regular file under `dir` ('/'-separated, relative); anything else is reported as unexpected. */
async function walk(dir: string, prefix = ''): Promise<{ files: string[]; unexpected: string[] }> {
  const files: string[] = [];
  const unexpected: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      const inner = await walk(join(dir, entry.name), rel);
      files.push(...inner.files);
      unexpected.push(...inner.unexpected);
    } else if (entry.isFile()) {
      files.push(rel);
    } else if (!(rel === 'node_modules' && entry.isSymbolicLink())) {
      unexpected.push(rel);
    }
  }
  return { files, unexpected };
}

/**
 * Writes a run's sealed snapshot (checked against its hashes and `digest`)
 * into a fresh run-private directory under DATA_DIR, laid out like the
 * closure root it was sealed from, so relative imports between the copies
 * resolve to the copies. node-pg-migrate is pointed at the copy's migrations
 * directory, which holds exactly the sealed migrations: a file added,
 * removed, renamed or edited in migrationsDir changes nothing that runs. The
 * directory's path is new for every call, so Node's module cache can never
 * hand back a helper loaded earlier. verify() re-hashes the whole copy.
 */
export async function materializeSnapshot(db: Queryable, runId: string, opts: { digest: string; dataDir: string }): Promise<MaterializedSnapshot> {
  const snapshot = await loadSnapshot(db, runId, opts.digest);
  const base = snapshotsDir(opts.dataDir);
  await mkdir(base, { recursive: true, mode: 0o700 });
  await sweep(base);
  const home = await mkdtemp(join(base, `${runId}-`));
  const close = () => rm(home, { recursive: true, force: true });
  try {
    await writeFile(join(home, OWNER_FILE), JSON.stringify({ host: hostname(), pid: process.pid, token: PROCESS_TOKEN, runId, digest: opts.digest }), { mode: 0o600 });
    const root = join(home, TREE);
    const files = [...snapshot.migrations, ...snapshot.modules];
    const dir = join(root, snapshot.migrationsPath);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const sub of new Set(files.map((f) => dirname(join(root, f.path))))) await mkdir(sub, { recursive: true, mode: 0o700 });
    await mapLimit(files, FILE_CONCURRENCY, (f) => writeFile(join(root, f.path), f.bytes, { mode: 0o400, flag: 'wx' }));
    const packages = await packagesFor(snapshot.root);
    if (packages) await symlink(packages, join(root, 'node_modules'), 'dir');

    const expected = new Map(files.map((f) => [f.path, f.sha256]));
    const verify = async () => {
      const { files: present, unexpected } = await walk(root);
      const extra = [...unexpected, ...present.filter((p) => !expected.has(p))];
      const missing = [...expected.keys()].filter((p) => !present.includes(p));
      const hashes = await mapLimit(present, FILE_CONCURRENCY, async (path) => (expected.has(path) ? sha256(await readFile(join(root, path))) : null));
      const changed = present.filter((path, i) => hashes[i] !== null && hashes[i] !== expected.get(path));
      if (extra.length || missing.length || changed.length) {
        const what = [changed.length && `changed: ${changed.join(', ')}`, missing.length && `missing: ${missing.join(', ')}`, extra.length && `not sealed: ${extra.join(', ')}`].filter(Boolean).join('; ');
        throw new MigrationChangedError(changed[0] ?? missing[0] ?? extra[0]!, `The run-private copy of the sealed snapshot no longer matches it (${what}); nothing more was run from it.`);
      }
    };
    await verify();
    return {
      runId,
      digest: opts.digest,
      root,
      dir,
      loaders: verifiedLoaders(new Map(snapshot.migrations.map((m) => [m.name, m.sha256]))),
      sealed: snapshot.migrations.map((m) => m.name),
      migrations: snapshot.migrations.map(({ name, file, sha256: hash }) => ({ name, file, sha256: hash })),
      modules: snapshot.modules.map(({ path, sha256: hash }) => ({ path, sha256: hash })),
      verify,
      close,
      cleanup: close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Opens the run's approved snapshot (run.digest) when the runner needs it: what apply and `down` run from. */
export function sealedSnapshot(db: Queryable, run: { id: string; digest: string }, dataDir: string): SourceOpener {
  return () => materializeSnapshot(db, run.id, { digest: run.digest, dataDir });
}

import { createHash } from 'node:crypto';
import { basename, extname, posix } from 'node:path';
import type pg from 'pg';
import { maybeOne, rows, transaction, type Queryable } from '../../database/db.js';
import {
  insertRunSnapshot, insertSnapshotBlobs, insertSnapshotFiles, selectRunSnapshot, selectSnapshotFiles,
  type RunSnapshotRow, type SnapshotFileRow,
} from '../../database/sql/snapshots.js';
import { snapshotDigest, type SnapshotContent, type SnapshotMigration } from './seal.js';
import type { SealedFile } from './import-closure.js';

/** The sealed snapshot of a run cannot be used; nothing ran from it. */
export class SnapshotError extends Error {
  constructor(
    readonly code: 'snapshot-missing' | 'snapshot-corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** A snapshot read back from the control database, every byte checked against its hash and the digest. */
export type StoredSnapshot = SnapshotContent & { createdAt: Date };

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * Stores a sealed snapshot for a run, in one transaction. Idempotent: the
 * same run and digest always name the same files (the digest covers them).
 */
export async function storeSnapshot(pool: pg.Pool, runId: string, snapshot: SnapshotContent): Promise<void> {
  const files = [...snapshot.migrations.map((m, i) => ({ ...m, kind: 'migration', position: i as number | null })), ...snapshot.modules.map((m) => ({ ...m, kind: 'module', position: null }))];
  const blobs = new Map(files.map((f) => [f.sha256, f.bytes]));
  await transaction(pool, async (client) => {
    await client.query(insertSnapshotBlobs([...blobs.keys()], [...blobs.values()]));
    const created = await maybeOne(client, insertRunSnapshot(runId, snapshot.digest, snapshot.root, snapshot.migrationsPath));
    if (!created) return;
    await client.query(insertSnapshotFiles(runId, snapshot.digest, {
      paths: files.map((f) => f.path), kinds: files.map((f) => f.kind), positions: files.map((f) => f.position), sha256s: files.map((f) => f.sha256),
    }));
  });
}

// Paths are written below a private directory: refuse anything that could step out of it.
function safePath(path: string): boolean {
  if (!path || path.includes('\0') || path.includes('\\') || path.startsWith('/')) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && part !== 'node_modules');
}

/**
 * Reads a run's snapshot for `digest` back, refusing one that is missing,
 * whose bytes no longer hash to what was sealed, or whose files no longer
 * make up the digest (the digest is what the approvals bind to).
 */
export async function loadSnapshot(db: Queryable, runId: string, digest: string): Promise<StoredSnapshot> {
  const head = await maybeOne<RunSnapshotRow>(db, selectRunSnapshot(runId, digest));
  if (!head) {
    throw new SnapshotError('snapshot-missing', `run ${runId} has no sealed snapshot of its approved content (digest ${digest.slice(0, 12)}…): it was preflighted before sealed snapshots existed, so the approved bytes are not known`);
  }
  const corrupt = (why: string) => new SnapshotError('snapshot-corrupt', `the sealed snapshot of run ${runId} cannot be used: ${why}`);
  const files = await rows<SnapshotFileRow>(db, selectSnapshotFiles(runId, digest));
  const migrations: SnapshotMigration[] = [];
  const modules: SealedFile[] = [];
  for (const f of files) {
    if (!safePath(f.path)) throw corrupt(`it holds the unsafe path ${JSON.stringify(f.path)}`);
    if (sha256(f.content) !== f.sha256) throw corrupt(`the stored bytes of ${f.path} do not hash to ${f.sha256}`);
    if (f.kind === 'module') {
      modules.push({ path: f.path, sha256: f.sha256, bytes: f.content });
      continue;
    }
    if (posix.dirname(f.path) !== (head.migrations_path || '.')) throw corrupt(`migration ${f.path} is not in its migrations directory ${head.migrations_path}`);
    const file = posix.basename(f.path);
    migrations.push({ name: basename(file, extname(file)), file, path: f.path, sha256: f.sha256, bytes: f.content });
  }
  if (migrations.length === 0) throw corrupt('it holds no migration');
  const recomputed = snapshotDigest(head.migrations_path, migrations, modules);
  if (recomputed !== digest) throw corrupt(`its files make up digest ${recomputed.slice(0, 12)}…, not the approved ${digest.slice(0, 12)}…`);
  return { root: head.source_root, migrationsPath: head.migrations_path, migrations, modules, digest, createdAt: head.created_at };
}

/** Why a run cannot run from its sealed snapshot, or null when it can. */
export async function sealedSnapshotProblem(db: Queryable, run: { id: string; digest: string }): Promise<string | null> {
  try {
    await loadSnapshot(db, run.id, run.digest);
    return null;
  } catch (err) {
    if (err instanceof SnapshotError) return err.message;
    throw err;
  }
}

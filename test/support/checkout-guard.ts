// Tests write only to temporary directories. The runner lists the checkout's
// .data/ (the demo's DATA_DIR) before and after a run and fails the run when
// a test left a file there, e.g. a backup dump of a test database.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

// An `npm start` demo running next to the tests keeps writing its own
// PostgreSQL data directory: that is not a test's doing.
const IGNORED = ['pg'];

async function walk(root: string, dir: string, out: Set<string>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const rel = relative(root, path);
    if (IGNORED.includes(rel)) continue;
    if (entry.isDirectory()) await walk(root, path, out);
    else out.add(rel);
  }
}

/** The files under `dataDir` (relative names), the embedded demo's data directory excluded. */
export async function listDataFiles(dataDir: string): Promise<Set<string>> {
  const out = new Set<string>();
  if (existsSync(dataDir)) await walk(dataDir, dataDir, out);
  return out;
}

/** Files that appeared under `dataDir` since `before` was listed. */
export async function newDataFiles(dataDir: string, before: Set<string>): Promise<string[]> {
  const after = await listDataFiles(dataDir);
  return [...after].filter((file) => !before.has(file)).sort();
}

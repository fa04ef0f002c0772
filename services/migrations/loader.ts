import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { createJiti } from 'jiti';
import type { RunnerOption } from 'node-pg-migrate';
import { SCRIPT_EXTENSIONS } from './import-closure.js';
import { memoTransform } from './transform-memo.js';

export type LoaderStrategies = NonNullable<RunnerOption['migrationLoaderStrategies']>;

export class MigrationChangedError extends Error {
  constructor(readonly migration: string, message?: string) {
    super(message ?? `Migration ${migration} changed on disk after preflight checked it; its content no longer matches the approved digest. Re-run preflight and get it approved again.`);
    this.name = 'MigrationChangedError';
  }
}

// node-pg-migrate's legacy `.sql` format (its sqlMigration getActions): an
// optional `-- Up Migration` and `-- Down Migration` section in one file.
const sectionStart = (direction: 'up' | 'down') => new RegExp(`^\\s*--[\\s-]*${direction}\\s+migration`, 'im');

function sqlActions(content: string) {
  const upStart = content.search(sectionStart('up'));
  const downStart = content.search(sectionStart('down'));
  const upSql = upStart >= 0 ? content.slice(upStart, downStart < upStart ? undefined : downStart) : content;
  const downSql = downStart >= 0 ? content.slice(downStart, upStart < downStart ? undefined : upStart) : undefined;
  return {
    up: (pgm: { sql(text: string): void }) => pgm.sql(upSql),
    down: downSql === undefined ? false : (pgm: { sql(text: string): void }) => pgm.sql(downSql),
  };
}

/**
 * Loader strategies for node-pg-migrate that evaluate exactly the bytes they
 * read, from the file's own path (so relative imports work) but never from
 * Node's module cache: a file edited while the service runs must not execute
 * stale code under a digest computed from its new bytes. A migration named in
 * `expected` whose bytes hash differently is refused, `.sql` ones included
 * (node-pg-migrate's own SQL loader would read the file again unchecked).
 * Each loader set caches by content hash, so one rehearsal evaluates each file
 * once; the TypeScript/ESM transform before evaluating is shared by all of
 * them (transform-memo.ts). Modules a migration imports are loaded by Node from their own path:
 * run from a sealed snapshot (snapshot.ts) that path is a fresh, verified copy.
 */
export function verifiedLoaders(expected: ReadonlyMap<string, string> = new Map()): LoaderStrategies {
  const jiti = createJiti(import.meta.url, { moduleCache: false, fsCache: false, transform: memoTransform });
  const evaluated = new Map<string, unknown>();
  const read = async (filePath: string) => {
    const bytes = await readFile(filePath);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const name = basename(filePath, extname(filePath));
    const want = expected.get(name);
    if (want !== undefined && want !== sha256) throw new MigrationChangedError(name);
    return { bytes, key: `${filePath}\0${sha256}` };
  };
  const script = async (filePaths: string[]) => {
    const units = [];
    for (const filePath of filePaths) {
      const { bytes, key } = await read(filePath);
      if (!evaluated.has(key)) evaluated.set(key, await jiti.evalModule(bytes.toString('utf8'), { filename: filePath, async: true }));
      units.push({ id: filePath, filePaths: [filePath], actions: evaluated.get(key) as never });
    }
    return units;
  };
  const sql = async (filePaths: string[]) => {
    const units = [];
    for (const filePath of filePaths) {
      const { bytes } = await read(filePath);
      units.push({ id: filePath, filePaths: [filePath], actions: sqlActions(bytes.toString('utf8')) as never });
    }
    return units;
  };
  return [
    { extensions: ['.sql'], loader: sql },
    { extensions: SCRIPT_EXTENSIONS, loader: script },
  ];
}

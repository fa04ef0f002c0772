import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { createJiti } from 'jiti';
import type { RunnerOption } from 'node-pg-migrate';

type LoaderStrategies = NonNullable<RunnerOption['migrationLoaderStrategies']>;

const SCRIPT_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

export class MigrationChangedError extends Error {
  constructor(readonly migration: string) {
    super(`Migration ${migration} changed on disk after preflight checked it; its content no longer matches the approved digest. Re-run preflight and get it approved again.`);
    this.name = 'MigrationChangedError';
  }
}

/**
 * Loader strategies for node-pg-migrate that evaluate exactly the bytes they
 * read, from the file's own path (so relative imports work) but never from
 * Node's module cache: a file edited while the service runs must not execute
 * stale code under a digest computed from its new bytes. A migration named in
 * `expected` whose bytes hash differently is refused. Each loader set caches
 * by content hash, so one rehearsal evaluates each file once.
 */
export function verifiedLoaders(expected: ReadonlyMap<string, string> = new Map()): LoaderStrategies {
  const jiti = createJiti(import.meta.url, { moduleCache: false, fsCache: false });
  const evaluated = new Map<string, unknown>();
  const loader = async (filePaths: string[]) => {
    const units = [];
    for (const filePath of filePaths) {
      const bytes = await readFile(filePath);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const name = basename(filePath, extname(filePath));
      const want = expected.get(name);
      if (want !== undefined && want !== sha256) throw new MigrationChangedError(name);
      const key = `${filePath}\0${sha256}`;
      if (!evaluated.has(key)) evaluated.set(key, await jiti.evalModule(bytes.toString('utf8'), { filename: filePath, async: true }));
      units.push({ id: filePath, filePaths: [filePath], actions: evaluated.get(key) as never });
    }
    return units;
  };
  return [
    { extensions: ['.sql'], loader: 'legacySql' },
    { extensions: SCRIPT_EXTENSIONS, loader },
  ];
}

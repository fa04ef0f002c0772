import { createHash } from 'node:crypto';
import { extname } from 'node:path';
import { createJiti } from 'jiti';

type TransformOptions = Parameters<ReturnType<typeof createJiti>['transform']>[0];

// jiti's own transform (Babel), through an instance that has no cache of its own.
const base = createJiti(import.meta.url, { moduleCache: false, fsCache: false });

const MAX_BYTES = 64 * 1024 * 1024;
const memo = new Map<string, string>();
let bytes = 0;

/**
 * Whether the transform's output can depend on the file's path. jiti's
 * transform gives Babel no file name; the path reaches the output only
 * through its import.meta plugin (import.meta.url, dirname, filename are
 * inlined as strings), which needs the word `meta` in the source (escapes
 * are not allowed in it, `\u` is excluded anyway), through .tsx detection
 * (the extension is part of the key) and in a parse error's message (never
 * kept).
 */
const pathFree = (source: string) => !source.includes('meta') && !source.includes('\\u');

/**
 * jiti's TypeScript/ESM transform, kept in memory by everything its output
 * depends on: the exact source, the options, and the path when the source
 * can see it. Transforming a migration costs far more than running its
 * result, and the same sealed bytes are transformed again by every runner
 * that loads them (the rehearsal, then the apply, each from its own copy of
 * the snapshot). Only the transform is shared: every loader still reads and
 * hashes the bytes it evaluates and evaluates them afresh. Nothing is
 * written to disk (jiti's file cache could be edited under it).
 */
export function memoTransform(opts: TransformOptions): { code: string } {
  const { filename, ...rest } = opts;
  const where = pathFree(opts.source) ? extname(filename ?? '') : filename ?? '';
  const key = createHash('sha256').update(JSON.stringify({ ...rest, where })).digest('hex');
  const hit = memo.get(key);
  if (hit !== undefined) return { code: hit };
  const code = base.transform(opts);
  // A parse error's code names the file: not shared, never kept.
  if (code.includes('__JITI_ERROR__')) return { code };
  memo.set(key, code);
  bytes += code.length;
  for (const [k, v] of memo) {
    if (bytes <= MAX_BYTES) break;
    memo.delete(k);
    bytes -= v.length;
  }
  return { code };
}

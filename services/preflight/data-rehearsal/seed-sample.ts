import { rows } from '../../../database/db.js';
import { copyIn, copySampleOut, heapBytes, setSequence, sourceTables, targetSequences, type SourceTable } from '../../../database/sql/data-rehearsal.js';
import { analyzeAndCount, loadInOneTransaction, readCopyShape, revalidate } from './load.js';
import type { SeedContext, SeedOutcome } from './seed-context.js';
import type { SeededTable } from './types.js';

// `sample`: at most sampleRows rows of every table, read from the target by
// read-only psql sessions and loaded into the copy in one transaction.

/** A sample load of many tables is minutes, not hours. */
const SAMPLE_TIMEOUT_MS = 60 * 60 * 1000;
/** SYSTEM sampling picks pages, so its row count varies: ask for more, LIMIT keeps the bound. */
const OVERSAMPLE = 1.5;

/** The share of pages to sample, or null to copy the first rows (small or never-analyzed tables). */
export function samplePercent(reltuples: number, sampleRows: number): number | null {
  if (reltuples <= sampleRows * OVERSAMPLE) return null;
  return Math.min(100, Number((((sampleRows * OVERSAMPLE) / reltuples) * 100).toPrecision(6)));
}

function targetRows(table: SourceTable, copied: number, percent: number | null, sampleRows: number, copyHeapBytes: number): Pick<SeededTable, 'targetRows' | 'targetRowsFrom'> {
  if (percent === null && copied < sampleRows) return { targetRows: copied, targetRowsFrom: 'whole table copied' };
  if (table.reltuples >= 0) return { targetRows: Math.max(table.reltuples, copied), targetRowsFrom: 'reltuples' };
  // Never analyzed on the target: as many rows as its pages hold at the copy's density.
  const perByte = copyHeapBytes > 0 ? copied / copyHeapBytes : 0;
  return { targetRows: Math.max(copied, Math.round(table.heap_bytes * perByte)), targetRowsFrom: 'heap size ratio' };
}

export async function seedSample(ctx: SeedContext): Promise<SeedOutcome> {
  const { environment: env, sampleRows } = ctx;
  const tables = (await rows<SourceTable>(ctx.target, sourceTables(env.migrationsSchema, env.migrationsTable))).filter((t) => t.columns);
  const sequences = await rows<{ ident: string; value: string }>(ctx.target, targetSequences());
  const shape = await readCopyShape(ctx.copy);
  const percents = new Map(tables.map((t) => [t.ident, samplePercent(t.reltuples, sampleRows)]));
  await loadInOneTransaction(ctx.copyUrl, ctx.secrets, shape, SAMPLE_TIMEOUT_MS, async (loader) => {
    for (const t of tables) {
      await loader.write(`${copyIn(t.ident, t.columns!)}\n`);
      await loader.pipeFrom('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', copySampleOut(t.ident, t.columns!, percents.get(t.ident)!, sampleRows)], ctx.targetUrl);
      await loader.write('\\.\n');
    }
    await loader.write(`${sequences.map((s) => setSequence(s.ident, s.value)).join('\n')}\n`);
  });
  const foreignKeysNotValid = await revalidate(ctx.copy, shape);
  const counts = await analyzeAndCount(ctx.copy, tables.map((t) => t.ident));
  const heap = new Map((await rows<{ ident: string; bytes: number }>(ctx.copy, heapBytes(tables.map((t) => t.ident)))).map((r) => [r.ident, r.bytes]));
  const seeded: SeededTable[] = tables.map((t) => {
    const copied = counts.get(t.ident) ?? 0;
    return { table: t.relation, copiedRows: copied, targetHeapBytes: t.heap_bytes, ...targetRows(t, copied, percents.get(t.ident)!, sampleRows, heap.get(t.ident) ?? 0) };
  });
  const sampled = tables.filter((t) => percents.get(t.ident) !== null).length;
  return {
    tables: seeded,
    foreignKeysNotValid,
    source: `a sample of the target: up to ${sampleRows} rows of each of ${tables.length} table(s)${sampled ? `, ${sampled} of them by TABLESAMPLE SYSTEM` : ''}`,
    notes: [],
  };
}

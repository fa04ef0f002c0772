import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { one, rows } from '../../../database/db.js';
import { sourceTables, targetDataBytes, type SourceTable } from '../../../database/sql/data-rehearsal.js';
import { verifyBackup, type BackupRecord } from '../../apply/backup.js';
import { analyzeAndCount, loadInOneTransaction, readCopyShape, revalidate } from './load.js';
import { toolOutput } from './psql-pipe.js';
import { SeedSkipped, type SeedContext, type SeedOutcome } from './seed-context.js';
import type { SeededTable } from './types.js';

// `full`: every row. First choice is the environment's latest verified
// pg_dump backup (it costs the target nothing); when there is none, it
// cannot be read, it holds migrations the target does not, or its rows do
// not fit the current schema, a fresh data-only pg_dump of the target.
// Either way the target's size is checked against fullDataMaxBytes first.

const FULL_TIMEOUT_MS = 6 * 60 * 60 * 1000;

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

/** The migration names a backup's copy of the migrations table holds (its COPY block). */
export function historyFromScript(script: string): string[] {
  const lines = script.split('\n');
  const start = lines.findIndex((l) => /^COPY \S+ \(.*\) FROM stdin;$/.test(l));
  if (start === -1) return [];
  const columns = /\((.*)\)/.exec(lines[start]!)![1]!.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
  const at = columns.indexOf('name');
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line === '\\.') break;
    const value = line.split('\t')[at];
    if (value !== undefined && value !== '\\N') names.push(value.replace(/\\\\/g, '\\'));
  }
  return names;
}

interface Loaded {
  shape: Awaited<ReturnType<typeof readCopyShape>>;
}

async function fromBackup(ctx: SeedContext, backup: BackupRecord, applied: string[]): Promise<{ behind: string[] } & Loaded> {
  const env = ctx.environment;
  await verifyBackup(backup, { environment: env, log: () => undefined });
  const file = backup.location!;
  const history = historyFromScript(await toolOutput('pg_restore', ['--data-only', '-n', env.migrationsSchema, '-t', env.migrationsTable, '-f', '-', file], null, ctx.secrets));
  const unknown = history.filter((n) => !applied.includes(n));
  if (unknown.length) throw new Error(`it holds migration(s) the target does not have (${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ', …' : ''})`);
  const behind = applied.filter((n) => !history.includes(n));
  // Everything but the migrations table's rows: the copy already has the target's history.
  const listing = await toolOutput('pg_restore', ['--list', file], null, ctx.secrets);
  const own = new RegExp(`^\\d+; \\d+ \\d+ TABLE DATA ${env.migrationsSchema.replace(/\$/g, '\\$')} ${env.migrationsTable.replace(/\$/g, '\\$')} `);
  const dir = await mkdtemp(join(tmpdir(), 'sf-data-rehearsal-'));
  try {
    const list = join(dir, 'restore.list');
    await writeFile(list, listing.split('\n').filter((l) => !own.test(l)).join('\n'), { mode: 0o600 });
    await chmod(list, 0o600);
    const shape = await readCopyShape(ctx.copy);
    await loadInOneTransaction(ctx.copyUrl, ctx.secrets, shape, FULL_TIMEOUT_MS, (loader) =>
      loader.pipeFrom('pg_restore', ['--data-only', '--no-owner', '--no-privileges', '-L', list, '-f', '-', file], null));
    return { behind, shape };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fromFreshDump(ctx: SeedContext): Promise<Loaded> {
  const env = ctx.environment;
  const shape = await readCopyShape(ctx.copy);
  await loadInOneTransaction(ctx.copyUrl, ctx.secrets, shape, FULL_TIMEOUT_MS, (loader) =>
    loader.pipeFrom('pg_dump', ['--data-only', '--no-owner', '--no-privileges', `--exclude-table-data="${env.migrationsSchema}"."${env.migrationsTable}"`], ctx.targetUrl));
  return { shape };
}

export async function seedFull(ctx: SeedContext, backup: BackupRecord | null, applied: string[], maxBytes: number): Promise<SeedOutcome> {
  const { bytes } = await one<{ bytes: number }>(ctx.target, targetDataBytes());
  if (bytes > maxBytes) {
    throw new SeedSkipped(`the target holds ${formatBytes(bytes)} of tables, TOAST and indexes, more than preflight.fullDataMaxBytes (${formatBytes(maxBytes)})`, true);
  }
  const tables = await rows<SourceTable>(ctx.target, sourceTables(ctx.environment.migrationsSchema, ctx.environment.migrationsTable));
  const notes: string[] = [];
  let source = 'a fresh data-only pg_dump of the target';
  let loaded: Loaded | null = null;
  let fromTarget = true;
  if (backup) {
    try {
      const { behind, shape } = await fromBackup(ctx, backup, applied);
      loaded = { shape };
      fromTarget = false;
      source = `backup ${backup.id} (taken ${backup.createdAt})`;
      if (behind.length) notes.push(`Backup ${backup.id} predates ${behind.length} applied migration(s) (${behind.join(', ')}); its rows were loaded into the current schema, so columns added since hold their defaults.`);
    } catch (err) {
      notes.push(`The latest verified backup (${backup.id}) was not used: ${(err as Error).message}; copied a fresh dump of the target instead.`);
    }
  }
  loaded ??= await fromFreshDump(ctx);
  const foreignKeysNotValid = await revalidate(ctx.copy, loaded.shape);
  const counts = await analyzeAndCount(ctx.copy, tables.map((t) => t.ident));
  const seeded: SeededTable[] = tables.map((t) => {
    const copied = counts.get(t.ident) ?? 0;
    return fromTarget || t.reltuples < 0
      ? { table: t.relation, copiedRows: copied, targetRows: copied, targetRowsFrom: 'whole table copied', targetHeapBytes: t.heap_bytes }
      : { table: t.relation, copiedRows: copied, targetRows: t.reltuples, targetRowsFrom: 'reltuples', targetHeapBytes: t.heap_bytes };
  });
  return { tables: seeded, foreignKeysNotValid, source, notes };
}

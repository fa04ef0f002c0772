import type { DataRehearsalReport } from './types.js';

// The report's dataRehearsal section as approvers read it (markdown.ts calls this).

const cell = (text: string | null | undefined) => (text ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const code = (text: string) => `\`${cell(text).slice(0, 120).replace(/`/g, "'")}\``;

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.abs(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${n < 0 ? '-' : ''}${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function duration(ms: number | null): string {
  if (ms === null) return 'n/a';
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

export function renderDataRehearsal(d: DataRehearsalReport): string[] {
  const out = ['', '## Data-bearing rehearsal', ''];
  if (d.mode === 'schema') {
    out.push(`preflight.data is \`${d.requested}\`, but the copy held the schema only: ${cell(d.skipped?.reason)}.`);
    return out;
  }
  out.push(`Copy: ${d.mode}, ${d.seededRows} rows (${bytes(d.seededBytes)}) from ${cell(d.source)}, loaded in ${duration(d.seedMs)}.`, '');
  out.push('### Estimates', '');
  out.push(...table(['migration', 'statement', 'on the copy', 'scale', 'target (scaled)', 'target (static)'], d.scaledEstimates.map((e) => [
    cell(e.migration), code(e.statement), duration(e.sampleMs),
    e.scale === null ? `${e.method}` : `×${e.scale} (${[
      `${e.method}${e.tables.length ? `: ${e.tables.join(', ')}` : ''}`,
      ...(e.fixedMs ? [`${duration(e.fixedMs)} fixed`] : []),
      ...(e.parallelWorkers ? [`${e.parallelWorkers} parallel worker(s) on the target`] : []),
    ].join('; ')})`,
    duration(e.estimatedTargetMs), duration(e.staticEstimateMs),
  ])));
  const locks = d.perMigration.flatMap((m) => m.statements.flatMap((s) => s.locks.map((l) => [cell(m.migration), code(s.sql), l.relation, l.mode, duration(l.heldMs)])));
  if (locks.length) out.push('', '### Locks held on the copy', '', ...table(['migration', 'statement', 'relation', 'mode', 'held'], locks));
  const growth = d.perMigration.flatMap((m) => m.growth.map((g) => [
    cell(m.migration), g.table, bytes(g.bytesBefore), bytes(g.bytesAfter), g.estimatedTargetGrowthBytes === null ? 'n/a' : bytes(g.estimatedTargetGrowthBytes),
  ]));
  if (growth.length) out.push('', '### Size growth', '', ...table(['migration', 'table', 'before (copy)', 'after (copy)', 'growth on the target (scaled)'], growth));
  out.push('', `_${d.method}_`);
  for (const n of d.notes) out.push('', `- ${cell(n)}`);
  return out;
}

import type { ApiRun } from '../runs/present.js';
import type { PreflightReport } from './report.js';
import { formatRows } from './estimate/row-counts.js';
import { renderDataRehearsal } from './data-rehearsal/markdown.js'; // data-bearing rehearsal (issue 18)

const STATUS: Record<string, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };
const cell = (text: string | null | undefined) => (text ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const code = (text: string | null | undefined) => (text ? `\`${cell(text).slice(0, 160).replace(/`/g, "'")}\`` : '');
const SEVERITY_ORDER = { error: 0, warning: 1, info: 2 } as const;

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** The preflight report as approvers read it in a ticket or PR comment. */
export function renderPreflightMarkdown(run: ApiRun, report: PreflightReport): string {
  const findings = [...report.findings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const out = [
    `# Preflight report: ${run.environment} run ${run.id}`,
    '',
    `- Outcome: **${report.outcome.toUpperCase()}** (${errors} error(s), ${findings.length - errors} other finding(s))`,
    `- Description: ${run.description}${run.ticket ? ` (${run.ticket})` : ''}`,
    `- Requested by: ${run.requestedBy}`,
    `- Digest: \`${report.digest ?? 'n/a'}\``,
    `- Server: ${report.server ? `PostgreSQL ${report.server.version}` : 'not reached'}`,
    `- Estimated apply time: ${report.impact ? `${duration(report.impact.totalEstimatedMs)}${report.impact.backup ? ` (backup ${duration(report.impact.backup.estimatedMs)}, migrations ${duration(report.impact.migrationsEstimatedMs ?? report.impact.totalEstimatedMs - report.impact.backup.estimatedMs)})` : ''}` : 'n/a'}`,
    `- Checked: ${report.startedAt} to ${report.finishedAt}`,
    '',
    '## Findings',
    '',
    ...(findings.length
      ? table(['severity', 'rule', 'migration', 'statement', 'message'], findings.map((f) => [
          f.acknowledged ? `${f.severity} (acknowledged: ${cell(f.acknowledged.reason)}${f.acknowledged.by ? `, by ${cell(f.acknowledged.by)}` : ''})` : f.severity,
          f.rule, cell(f.migration), code(f.statement), cell(f.message),
        ]))
      : ['None.']),
    '',
    '## Checks',
    '',
    ...table(['check', 'status', 'detail'], report.checks.map((c) => [c.id, STATUS[c.status] ?? c.status, cell(c.detail)])),
    '',
    '## Migrations',
    '',
    ...table(['#', 'name', 'sha256', 'transaction', 'strongest lock', 'estimate', 'down'], report.migrations.map((m, i) => {
      const impact = report.impact?.migrations.find((x) => x.migration === m.name);
      const rehearsed = report.rehearsal?.notRehearsed?.includes(m.name) ? 'not rehearsed' : report.rehearsal?.reversibility?.[m.name] ?? '';
      return [String(i + 1), cell(m.name), `\`${m.sha256.slice(0, 12)}\``, impact ? (impact.transactional ? 'yes' : 'no') : '', impact?.strongestLock ?? '', impact ? duration(impact.estimatedMs) : '', rehearsed];
    })),
  ];
  if (report.impact?.tables.length) {
    out.push('', '## Tables touched', '', ...table(['table', 'rows', 'size', 'exists'], report.impact.tables.map((t) => [
      t.table, t.exists ? `${formatRows(t.rows, t.rowsSource)}${t.rowsSource === 'reltuples' || t.rowsSource === 'n_live_tup' ? ' (est.)' : ''}` : '0', bytes(t.bytes), t.exists ? 'yes' : 'new',
    ])));
  }
  if (report.impact) {
    if (report.impact.calibration) out.push('', `Estimates calibrated by: ${cell(report.impact.calibration.summary)}.`);
    out.push('', `_${report.impact.assumptions}_`);
  }
  if (report.rehearsal) {
    out.push('', '## Rehearsal', '', `${report.rehearsal.seededFrom === 'empty' ? 'On an empty copy (nothing to dump)' : `Seeded from ${report.rehearsal.seededFrom}`}; ${report.rehearsal.durationMs} ms in all.`, '',
      ...table(['phase', 'migration', 'result', 'time'], report.rehearsal.steps.map((s) => [
        s.phase, cell(s.migration), s.ok ? 'ok' : `FAILED${s.error?.sqlState ? ` (${s.error.sqlState})` : ''}: ${cell(s.error?.message)}`, duration(s.durationMs),
      ])));
  }
  if (report.dataRehearsal) out.push(...renderDataRehearsal(report.dataRehearsal)); // data-bearing rehearsal (issue 18)
  if (report.notes.length) out.push('', '## Notes', '', ...report.notes.map((n) => `- ${n}`));
  out.push('');
  return out.join('\n');
}

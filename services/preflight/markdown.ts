import type { ApiRun } from '../runs/present.js';
import type { PreflightReport } from './preflight-service.js';

const ICON: Record<string, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The preflight report as approvers read it in a ticket or PR comment. */
export function renderPreflightMarkdown(run: ApiRun, report: PreflightReport): string {
  const lines = [
    `# Preflight report: ${run.environment} run ${run.id}`,
    '',
    `- Outcome: **${report.outcome.toUpperCase()}**`,
    `- Description: ${run.description}${run.ticket ? ` (${run.ticket})` : ''}`,
    `- Requested by: ${run.requestedBy}`,
    `- Digest: \`${report.digest ?? 'n/a'}\``,
    `- Checked: ${report.startedAt} to ${report.finishedAt}`,
    '',
    `> ${report.note}`,
    '',
    '## Migrations',
    '',
    '| # | name | sha256 |',
    '|---|------|--------|',
    ...report.migrations.map((m, i) => `| ${i + 1} | ${cell(m.name)} | \`${m.sha256.slice(0, 12)}\` |`),
    '',
    '## Checks',
    '',
    '| check | status | detail |',
    '|-------|--------|--------|',
    ...report.checks.map((c) => `| ${c.id} | ${ICON[c.status]} | ${cell(c.detail)} |`),
    '',
    '## Findings',
    '',
    ...(report.findings.length
      ? ['| severity | rule | migration | message |', '|----------|------|-----------|---------|',
        ...report.findings.map((f) => `| ${f.severity} | ${f.rule} | ${f.migration ?? ''} | ${cell(f.message)} |`)]
      : ['None.']),
    '',
  ];
  return lines.join('\n');
}

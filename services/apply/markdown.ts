import type { ApiRun } from '../runs/present.js';
import type { ApplyReport } from './apply-service.js';
import type { RollbackReport } from './rollback-service.js';
import { WORKERS_NOT_CONFIGURED } from './workers.js';

const cell = (text: string | null | undefined) => (text ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

/** The run's apply (and rollback) report as operators attach it to a ticket. */
export function renderApplyMarkdown(run: ApiRun, apply: ApplyReport | null, rollback: RollbackReport | null): string {
  const out = [`# Run report: ${run.environment} run ${run.id}`, '', `- Description: ${run.description}${run.ticket ? ` (${run.ticket})` : ''}`, `- Status: **${run.status}**`, `- Digest: \`${run.digest}\``];
  if (apply) {
    out.push(
      `- Applied by: ${apply.actor}, ${apply.startedAt} to ${apply.finishedAt}`,
      // Reports stored before 'degraded' was an outcome said succeeded with a degraded watch.
      `- Outcome: **${(apply.watch?.degraded && apply.outcome === 'succeeded' ? 'degraded' : apply.outcome).toUpperCase()}**`,
      `- Backup: ${apply.backup ? `\`${apply.backup.id}\` (${apply.backup.method}${apply.backup.sizeBytes !== null ? `, ${apply.backup.sizeBytes} bytes` : ''}${apply.backup.sha256 ? `, sha256 ${apply.backup.sha256.slice(0, 12)}…` : ''}, verified ${apply.backup.verifiedAt ?? 'no'})` : 'none'}`,
      `- Workers: ${apply.workers ? `paused via ${apply.workers.method}${apply.workers.note ? ` (${apply.workers.note})` : ''}; ${apply.workers.resumed ? 'resumed' : 'NOT resumed'}` : apply.notes.includes(WORKERS_NOT_CONFIGURED) ? 'not configured (no etl_control table on the target)' : 'not paused'}`,
      `- Lock retries: ${apply.lockRetries}`,
      '',
      '## Migrations applied',
      '',
      '| migration | time | attempts | transaction |',
      '|---|---|---|---|',
      ...apply.migrations.map((m) => `| ${m.name} | ${m.durationMs} ms | ${m.attempts} | ${m.transactional ? 'yes' : 'no'} |`),
    );
    if (apply.failure) {
      out.push('', '## Failure', '', `- Phase: ${apply.failure.phase}`, `- Code: ${apply.failure.code}`, `- Migration: ${apply.failure.migration ?? 'n/a'}`,
        `- SQLSTATE: ${apply.failure.sqlState ?? 'n/a'}`, `- Statement: \`${cell(apply.failure.statement).slice(0, 300)}\``, `- ${cell(apply.failure.message)}`,
        ...(apply.failure.partial ?? []).map((p) => `- Partial: ${cell(p)}`));
    }
    out.push('', '## Verification', '', '| check | status | detail | query |', '|---|---|---|---|',
      ...apply.verification.map((c) => `| ${c.id} | ${c.status.toUpperCase()} | ${cell(c.detail)} | \`${cell(c.query).slice(0, 200)}\` |`));
    if (apply.smoke) out.push('', `Smoke ETL: **${apply.smoke.ok ? 'PASS' : apply.smoke.notConfigured ? 'NOT CONFIGURED' : apply.smoke.ran ? 'FAIL' : 'NOT RUN'}**: ${cell(apply.smoke.detail)} (${apply.smoke.durationMs} ms)`);
    if (apply.watch) {
      out.push('', '## Post-apply watch', '', `- Watched ${apply.watch.watchedSeconds} s: **${apply.watch.degraded ? 'DEGRADED' : 'healthy'}**. ${cell(apply.watch.detail)}`);
      if (apply.watch.baseline) out.push(`- Baseline: ${apply.watch.baseline.processedPerMinute}/min processed, failure rate ${apply.watch.baseline.failureRate}`);
      if (apply.watch.during) {
        const invalid = apply.watch.during.invalid ? `, ${apply.watch.during.invalid} invalid client upload(s) (not counted as failures)` : '';
        out.push(`- After: ${apply.watch.during.processedPerMinute}/min processed, ${apply.watch.during.failed} processing errors (rate ${apply.watch.during.failureRate})${invalid}, backlog ${apply.watch.during.backlog}`);
      }
    } else if (run.status === 'monitoring' && run.watch) {
      out.push('', '## Post-apply watch', '', `- Running since ${run.watch.startedAt}, ends ${run.watch.endsAt}: this section fills in when it ends.`);
    }
    if (apply.notes.length) out.push('', '## Notes', '', ...apply.notes.map((n) => `- ${n}`));
  }
  if (rollback) {
    out.push('', `## ${rollback.mode === 'down' ? 'Rollback (down)' : 'Restore'}`, '',
      `- Outcome: **${rollback.outcome.toUpperCase()}**`, `- Requested by ${rollback.requestedBy}, approved by ${rollback.approvedBy}: ${cell(rollback.reason)}`,
      `- ${rollback.startedAt} to ${rollback.finishedAt}`,
      ...(rollback.backupId ? [`- Backup restored: \`${rollback.backupId}\``] : []),
      ...rollback.reverted.map((m) => `- Reverted ${m.name} in ${m.durationMs} ms`),
      ...rollback.checks.map((c) => `- Check ${c.id}: ${c.status.toUpperCase()}: ${cell(c.detail)}`),
      ...(rollback.failure ? [`- Failure (${rollback.failure.code}): ${cell(rollback.failure.message)}`] : []),
      ...rollback.notes.map((n) => `- ${n}`));
  }
  out.push('');
  return out.join('\n');
}

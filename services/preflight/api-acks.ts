import { maybeOne, rows, type Queryable } from '../../database/db.js';
import { acknowledgementsOf, type AcknowledgementRow } from '../../database/sql/acknowledgements.js';
import { latestReport } from '../../database/sql/reports.js';
import { withFindingIds } from './finding-id.js';
import type { Finding, PreflightReport } from './report.js';
import { acknowledge } from './sql-analysis/acks.js';

// Applies the acknowledgements approvers gave through the API to a preflight
// report: when it is served (GET /v1/runs/:id/preflight) and when a new one
// is built, so an ack for the same digest and finding id carries over. The
// stored report is never rewritten.

/**
 * Findings about the preflight itself, not about a risk someone can accept:
 * acknowledging them would approve content nobody checked. rule → why not.
 */
export const NOT_ACKNOWLEDGEABLE: Readonly<Record<string, string>> = {
  'target-unreachable': 'preflight could not reach the target, so nothing was checked; re-run preflight once it is reachable',
  'nothing-to-apply': 'there is nothing to apply; cancel the run',
  'pending-set-invalid': 'the pending migrations could not be determined; fix the migrations directory and re-run preflight',
  'missing-migration-file': 'an applied migration has no file; restore the file and re-run preflight',
  'migration-order': 'a pending migration sorts before an applied one; rename it and re-run preflight',
  'unknown-to': 'the run\'s "to" names no pending migration; create a new run',
  'unknown-environment': 'the environment is no longer configured',
  'import-outside-snapshot': 'the migrations could not be sealed, so the approved bytes could not be pinned; fix the import and re-run preflight',
  'import-unresolved': 'the migrations could not be sealed completely; fix the import and re-run preflight',
  'content-changed': 'it records that the content changed, there is no risk in it to accept',
  'rehearsal-failed': 'the migration failed on the rehearsal copy and would fail on the target the same way; fix it and re-run preflight',
};

export interface ApiAcknowledgement {
  id: number;
  finding: string;
  rule: string;
  migration: string | null;
  digest: string;
  reason: string;
  by: string;
  role: string;
  at: string;
}

export function presentAcknowledgement(row: AcknowledgementRow): ApiAcknowledgement {
  return {
    id: Number(row.id), finding: row.finding_id, rule: row.rule, migration: row.migration, digest: row.digest,
    reason: row.reason, by: row.subject, role: row.role, at: row.created_at.toISOString(),
  };
}

export function outcomeOf(findings: Finding[]): PreflightReport['outcome'] {
  return findings.some((f) => f.severity === 'error') ? 'failed' : 'passed';
}

/** The report with the acks for its digest applied: an acknowledged error becomes a warning that no longer fails it. */
export function applyApiAcks(report: PreflightReport, acks: readonly AcknowledgementRow[]): PreflightReport {
  const mine = new Map(acks.filter((a) => a.digest === report.digest).map((a) => [a.finding_id, a]));
  if (mine.size === 0) return report;
  const findings = report.findings.map((f) => {
    const ack = f.id === undefined ? undefined : mine.get(f.id);
    if (!ack || f.acknowledged) return f;
    return acknowledge(f, { reason: ack.reason, by: ack.subject, at: ack.created_at.toISOString(), via: 'api' });
  });
  return { ...report, findings, outcome: outcomeOf(findings) };
}

/** The run's latest preflight report as served: ids (reports stored before they existed get them now) and the acks for its digest. */
export async function servedReport(db: Queryable, runId: string): Promise<{ report: PreflightReport; createdAt: string; stored: PreflightReport } | null> {
  const row = await maybeOne<{ body: PreflightReport; created_at: Date }>(db, latestReport(runId, 'preflight'));
  if (!row) return null;
  const stored = row.body.findings.every((f) => f.id) ? row.body : { ...row.body, findings: withFindingIds(row.body.findings) };
  const acks = stored.digest ? await rows<AcknowledgementRow>(db, acknowledgementsOf(runId, stored.digest)) : [];
  return { report: applyApiAcks(stored, acks), createdAt: row.created_at.toISOString(), stored };
}

// A statement estimated to run longer than the environment's statement_timeout
// would be cancelled by it in the apply (SQLSTATE 57014) and roll back.
import type { EnvironmentConfig } from '../../environments/model.js';
import type { Finding, ImpactEstimate } from '../report.js';

/** Beyond this multiple of the timeout the estimate's error (within 1.5x) cannot save it: an error, not a warning. */
const SURE_FAILURE_FACTOR = 2;

const human = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`);

export function timeoutFindings(impact: ImpactEstimate | null, env: EnvironmentConfig): Finding[] {
  if (!impact) return [];
  const timeout = env.statementTimeoutMs;
  const findings: Finding[] = [];
  for (const m of impact.migrations) {
    for (const s of m.statements) {
      if (s.estimatedMs <= timeout) continue;
      const sure = s.estimatedMs > SURE_FAILURE_FACTOR * timeout;
      findings.push({
        rule: 'estimate-exceeds-statement-timeout',
        severity: sure ? 'error' : 'warning',
        migration: m.migration,
        statement: s.statement,
        acknowledged: null,
        message: `This statement is estimated at ${human(s.estimatedMs)} on ${env.name}, longer than its statement_timeout (statementTimeoutMs: ${human(timeout)}): ` +
          `the apply would be cancelled by the timeout (SQLSTATE 57014) and roll the migration back${sure ? '' : ' if the estimate holds'}. ` +
          `Raise statementTimeoutMs for ${env.name}, or split the work (build the index CONCURRENTLY in its own migration, backfill in batches). Estimate: ${s.basis ?? 'default rates'}.`,
      });
    }
  }
  return findings;
}

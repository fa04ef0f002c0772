import { hasRole, type Principal } from '../principal.js';

/**
 * What a caller's roles let it ask for, so a client can offer only those
 * actions. The same rules the routes and services enforce (README, roles); the
 * server still decides each request, including what roles alone cannot tell
 * (a requester never approves their own run, a rollback needs another sre).
 */
export interface Capabilities {
  createRun: boolean;
  /** The approver roles the caller may decide a run as. */
  approveAs: Array<'engineering' | 'sre'>;
  /** Acknowledge preflight findings (engineering, sre; never on one's own run). */
  acknowledgeFindings: boolean;
  /** Cancel or re-run the preflight of one's own runs (requester). */
  manageOwnRuns: boolean;
  /** Cancel or re-run the preflight of any run (operator). */
  manageAnyRun: boolean;
  apply: boolean;
  /** Apply outside a maintenance window: operator and sre together. */
  applyOutsideWindow: boolean;
  requestRollback: boolean;
  approveRollback: boolean;
  controlEtl: boolean;
  controlBackfills: boolean;
}

export function capabilitiesOf(principal: Principal): Capabilities {
  const operator = hasRole(principal, 'operator');
  const sre = hasRole(principal, 'sre');
  return {
    createRun: hasRole(principal, 'requester'),
    approveAs: (['engineering', 'sre'] as const).filter((role) => hasRole(principal, role)),
    acknowledgeFindings: hasRole(principal, 'engineering') || hasRole(principal, 'sre'),
    manageOwnRuns: hasRole(principal, 'requester'),
    manageAnyRun: operator,
    apply: operator,
    applyOutsideWindow: operator && sre,
    requestRollback: operator,
    approveRollback: sre,
    controlEtl: operator,
    controlBackfills: operator,
  };
}

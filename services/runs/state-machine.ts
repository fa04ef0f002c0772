export const RUN_STATUSES = [
  'created', 'preflight_running', 'preflight_failed', 'awaiting_approval', 'rejected', 'approved', 'scheduled',
  'applying', 'verifying', 'monitoring', 'succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted',
  'cancelled', 'rolling_back', 'rolled_back', 'restoring', 'restored',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * Statuses that hold an environment: at most one run per environment may be in
 * one of these (enforced by the partial unique index runs_one_active_per_environment).
 */
export const ACTIVE_STATUSES: readonly RunStatus[] = [
  'created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled',
  'applying', 'verifying', 'monitoring', 'interrupted', 'rolling_back', 'restoring',
];

// The run state machine of DESIGN.md. Anything not listed is refused with 409.
const TRANSITIONS: Record<RunStatus, readonly RunStatus[]> = {
  created: ['preflight_running', 'cancelled'],
  preflight_running: ['awaiting_approval', 'preflight_failed', 'cancelled'],
  // -> awaiting_approval: approvers acknowledged its last error findings (POST /v1/runs/:id/acknowledgements).
  preflight_failed: ['preflight_running', 'awaiting_approval'],
  awaiting_approval: ['approved', 'rejected', 'cancelled', 'preflight_running'],
  rejected: [],
  approved: ['scheduled', 'applying', 'cancelled', 'preflight_running'],
  scheduled: ['applying', 'approved', 'cancelled', 'preflight_running'],
  applying: ['verifying', 'failed', 'interrupted'],
  // verifying -> succeeded: a target with no ETL to watch needs no monitoring phase.
  verifying: ['monitoring', 'succeeded', 'verification_failed', 'failed', 'interrupted'],
  monitoring: ['succeeded', 'degraded', 'interrupted'],
  succeeded: ['rolling_back', 'restoring'],
  failed: ['rolling_back', 'restoring'],
  verification_failed: ['rolling_back', 'restoring'],
  degraded: ['rolling_back', 'restoring', 'succeeded'],
  // interrupted -> failed: closed once nothing of it landed; -> applying: re-applied (the rest of its migrations).
  interrupted: ['failed', 'applying', 'rolling_back', 'restoring'],
  cancelled: [],
  rolling_back: ['rolled_back', 'failed'],
  rolled_back: [],
  restoring: ['restored', 'failed'],
  restored: [],
};

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function allowedFrom(to: RunStatus): RunStatus[] {
  return RUN_STATUSES.filter((from) => canTransition(from, to));
}

export function isActive(status: RunStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

import type { EnvironmentConfig } from '../environments/model.js';
import { RUN_STATUSES, allowedFrom } from '../runs/state-machine.js';

// The label values a counter can take are known from the config and the code:
// its series are exported at 0 from the first scrape, so increase() and
// rate() see the first event (a series that appears at 1 has no increase,
// and an alert on it would miss the first failure).

/** Every (from, to) a run can take, 'none' -> created included, as starforge_run_transitions_total labels them. */
export const RUN_TRANSITIONS: ReadonlyArray<readonly [from: string, to: string]> = [
  ['none', 'created'],
  ...RUN_STATUSES.flatMap((to) => allowedFrom(to).map((from) => [from, to] as const)),
];

/** Post-apply verification check ids (services/verify/verify.ts), for starforge_verification_check_failures_total. */
export const VERIFICATION_CHECKS = [
  'migrations-applied', 'connections', 'long-transactions', 'expected-tables', 'expected-indexes',
  'invalid-indexes', 'smoke-etl', 'new-etl-errors',
] as const;

/** starforge_notifications_total outcomes (services/notify/notifier.ts). */
export const NOTIFICATION_OUTCOMES = ['delivered', 'retrying', 'failed'] as const;

/** The webhook kinds an environment's notify targets use. */
export function notifyKinds(env: EnvironmentConfig): string[] {
  return [...new Set(env.notify.map((n) => n.kind))].sort();
}

import { RUN_STATUSES, type RunStatus } from '../runs/state-machine.js';
import { array, ENV_VAR, object, string } from './config-values.js';
import { ConfigError } from './config-error.js';

// An environment's `notify`: the webhooks its runs' transitions are announced to.

export interface NotifyTarget {
  /** slack: `{"text": ...}` (Slack incoming webhooks and compatibles); webhook: a JSON body with the event and run. */
  kind: 'slack' | 'webhook';
  /** The environment variable holding the URL: webhook URLs are secrets and never live in the config file. */
  urlEnv: string;
  /** Run statuses announced to this target. */
  events: RunStatus[];
}

/** What a target hears about when its config lists no `events`. */
export const DEFAULT_NOTIFY_EVENTS: readonly RunStatus[] = [
  'created', 'awaiting_approval', 'preflight_failed', 'rejected', 'approved', 'scheduled', 'applying',
  'succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted', 'cancelled', 'rolled_back', 'restored',
];

export function parseNotify(value: unknown, key: string): NotifyTarget {
  const n = object(value, key, ['kind', 'urlEnv', 'events']);
  if (n.kind !== 'slack' && n.kind !== 'webhook') throw new ConfigError(`${key}.kind`, 'must be "slack" or "webhook"');
  const events = n.events === undefined
    ? [...DEFAULT_NOTIFY_EVENTS]
    : array(n.events, `${key}.events`, (e, k) => {
        if (!RUN_STATUSES.includes(e as RunStatus)) throw new ConfigError(k, `must be a run status (${RUN_STATUSES.join(', ')})`);
        return e as RunStatus;
      });
  if (events.length === 0) throw new ConfigError(`${key}.events`, 'lists no status; remove the target instead');
  return { kind: n.kind, urlEnv: string(n.urlEnv, `${key}.urlEnv`, ENV_VAR, 'an environment variable name'), events };
}

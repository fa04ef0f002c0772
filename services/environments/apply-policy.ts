import { ConfigError } from './config-error.js';
import { isObject } from './config-values.js';

// Who starts an approved run, and which environment a run must have succeeded
// in first. Parsed here so environments.ts stays one screenful of plumbing.

export type ApplyMode = 'confirm' | 'auto';

export interface ApplyPolicy {
  /**
   * confirm: the last approval leaves the run `approved` until an operator
   * confirms it with the environment's name (POST /v1/runs/:id/apply);
   * auto: the last approval schedules it for its first fitting window.
   */
  mode: ApplyMode;
}

export interface PromotionRule {
  /** A run here is approvable only once a run with the same digest has succeeded in this environment. */
  environment: string;
}

/**
 * The default: `confirm` where a mistake costs most, i.e. for an environment
 * named production or one whose approvals require an sre; `auto` elsewhere.
 */
export function defaultApplyMode(name: string, required: readonly string[]): ApplyMode {
  return name === 'production' || required.includes('sre') ? 'confirm' : 'auto';
}

function only(value: Record<string, unknown>, key: string, allowed: string[]): void {
  for (const field of Object.keys(value)) {
    if (!allowed.includes(field)) throw new ConfigError(`${key}.${field}`, `is not a known setting (known: ${allowed.join(', ')})`);
  }
}

export function parseApplyPolicy(value: unknown, key: string, name: string, required: readonly string[]): ApplyPolicy {
  if (value === undefined) return { mode: defaultApplyMode(name, required) };
  if (!isObject(value)) throw new ConfigError(key, 'must be an object');
  only(value, key, ['mode']);
  if (value.mode === undefined) return { mode: defaultApplyMode(name, required) };
  if (value.mode !== 'confirm' && value.mode !== 'auto') throw new ConfigError(`${key}.mode`, 'must be "confirm" or "auto"');
  return { mode: value.mode };
}

export function parsePromotionRule(value: unknown, key: string): PromotionRule | null {
  if (value === undefined) return null;
  if (!isObject(value)) throw new ConfigError(key, 'must be an object');
  only(value, key, ['environment']);
  if (typeof value.environment !== 'string' || value.environment.length === 0) throw new ConfigError(`${key}.environment`, 'must be the name of another environment');
  return { environment: value.environment };
}

/**
 * Every `requires` names another configured environment, and following them
 * never comes back (a cycle would make every run in it unapprovable).
 */
export function checkPromotionOrder(environments: Record<string, { requires: PromotionRule | null }>): void {
  for (const [name, env] of Object.entries(environments)) {
    if (!env.requires) continue;
    const key = `environments.${name}.requires.environment`;
    const first = env.requires.environment;
    if (first === name) throw new ConfigError(key, 'names the environment itself');
    if (!environments[first]) throw new ConfigError(key, `"${first}" is not a configured environment (configured: ${Object.keys(environments).join(', ')})`);
    const seen = [name];
    for (let next: string | undefined = first; next; next = environments[next]?.requires?.environment) {
      if (seen.includes(next)) throw new ConfigError(key, `the promotion order loops: ${[...seen, next].join(' -> ')}`);
      seen.push(next);
    }
  }
}

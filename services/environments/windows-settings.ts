import { validate as validateCron } from 'node-cron';
import { date, integer, object, string, timezone } from './config-values.js';
import { ConfigError } from './config-error.js';

// An environment's `windows` (when a run may apply) and `freezes` (when none may).

export interface WindowConfig {
  cron: string;
  durationMinutes: number;
  timezone: string;
}
export interface FreezeConfig {
  from: Date;
  to: Date;
  reason: string;
}

export function parseWindow(value: unknown, key: string): WindowConfig {
  const w = object(value, key, ['cron', 'durationMinutes', 'timezone']);
  const cron = string(w.cron, `${key}.cron`);
  if (!validateCron(cron)) throw new ConfigError(`${key}.cron`, `"${cron}" is not a valid cron expression`);
  return {
    cron,
    durationMinutes: integer(w.durationMinutes, `${key}.durationMinutes`, 1, 7 * 24 * 60),
    timezone: w.timezone === undefined ? 'UTC' : timezone(w.timezone, `${key}.timezone`),
  };
}

export function parseFreeze(value: unknown, key: string): FreezeConfig {
  const f = object(value, key, ['from', 'to', 'reason']);
  const from = date(f.from, `${key}.from`);
  const to = date(f.to, `${key}.to`);
  if (to <= from) throw new ConfigError(`${key}.to`, 'must be after "from"');
  return { from, to, reason: f.reason === undefined ? 'freeze' : string(f.reason, `${key}.reason`) };
}

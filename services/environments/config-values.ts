import { ConfigError } from './config-error.js';

// Checks of one value of the environments file. Each names the key at fault,
// so a bad setting stops start-up saying which one and what it must be.

export const ENV_VAR = /^[A-Z_][A-Z0-9_]*$/;
export const SQL_NAME = /^[a-z_][a-z0-9_$]{0,62}$/;
export const QUALIFIED_SQL_NAME = /^([a-z_][a-z0-9_$]{0,62}\.)?[a-z_][a-z0-9_$]{0,62}$/;

export type Obj = Record<string, unknown>;

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function object(value: unknown, key: string, allowed?: string[]): Obj {
  if (!isObject(value)) throw new ConfigError(key, 'must be an object');
  if (allowed) {
    for (const field of Object.keys(value)) {
      if (!allowed.includes(field)) throw new ConfigError(`${key}.${field}`, `is not a known setting (known: ${allowed.join(', ')})`);
    }
  }
  return value;
}

export function string(value: unknown, key: string, pattern?: RegExp, hint?: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(key, 'must be a non-empty string');
  if (pattern && !pattern.test(value)) throw new ConfigError(key, `"${value}" is not valid${hint ? ` (${hint})` : ''}`);
  return value;
}

export function integer(value: unknown, key: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function minutes(value: unknown, key: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 24 * 60) {
    throw new ConfigError(key, 'must be a number of minutes from 0 to 1440 (fractions allowed)');
  }
  return value;
}

export function boolean(value: unknown, key: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(key, 'must be true or false');
  return value;
}

export function booleanOr(value: unknown, key: string, other: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(key, `must be true, false or ${other}`);
  return value;
}

export function array<T>(value: unknown, key: string, item: (v: unknown, k: string) => T): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(key, 'must be an array');
  return value.map((v, i) => item(v, `${key}[${i}]`));
}

export function timezone(value: unknown, key: string): string {
  const zone = string(value, key);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new ConfigError(key, `"${zone}" is not an IANA time zone`);
  }
  return zone;
}

export function date(value: unknown, key: string): Date {
  const text = string(value, key);
  const parsed = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(parsed.getTime())) {
    throw new ConfigError(key, `"${text}" is not an ISO 8601 date-time`);
  }
  return parsed;
}

export function httpUrl(value: unknown, key: string): string {
  const text = string(value, key);
  try {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return text;
  } catch {
    /* fall through */
  }
  throw new ConfigError(key, 'must be an http(s) URL');
}

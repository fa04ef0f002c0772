import { ConfigError } from './config-error.js';

// An environment's `preflight` settings. Parsed here so model.ts does not grow.

/**
 * What the rehearsal copy holds besides the target's schema:
 * schema: nothing (the default); sample: up to `sampleRows` rows of each table;
 * full: all of it, from the latest verified backup or a fresh dump.
 */
export type PreflightDataMode = 'schema' | 'sample' | 'full';
export const PREFLIGHT_DATA_MODES: readonly PreflightDataMode[] = ['schema', 'sample', 'full'];

export interface PreflightSettings {
  /** Transactions open longer than this on the target are reported (they would block DDL). */
  longTransactionSeconds: number;
  data: PreflightDataMode;
  /** sample: the most rows copied from each table. */
  sampleRows: number;
  /** full: the largest target (tables, TOAST and indexes) that is copied; a larger one is rehearsed with its schema only. */
  fullDataMaxBytes: number;
}

export const DEFAULT_SAMPLE_ROWS = 20_000;
export const DEFAULT_FULL_DATA_MAX_BYTES = 1024 ** 3;
const KEYS = ['longTransactionSeconds', 'data', 'sampleRows', 'fullDataMaxBytes'];

function integer(value: unknown, key: string, min: number, max: number, unit = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}${unit}`);
  }
  return value;
}

export function parsePreflightSettings(value: unknown, key: string): PreflightSettings {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) throw new ConfigError(key, 'must be an object');
  const p = (value ?? {}) as Record<string, unknown>;
  for (const field of Object.keys(p)) {
    if (!KEYS.includes(field)) throw new ConfigError(`${key}.${field}`, `is not a known setting (known: ${KEYS.join(', ')})`);
  }
  if (p.data !== undefined && !PREFLIGHT_DATA_MODES.includes(p.data as PreflightDataMode)) {
    throw new ConfigError(`${key}.data`, `must be one of ${PREFLIGHT_DATA_MODES.map((m) => `"${m}"`).join(', ')}`);
  }
  return {
    longTransactionSeconds: p.longTransactionSeconds === undefined ? 60 : integer(p.longTransactionSeconds, `${key}.longTransactionSeconds`, 1, 86_400),
    data: (p.data as PreflightDataMode | undefined) ?? 'schema',
    // Below 100 rows a per-table timing is all fixed cost; above a million the sample is a copy.
    sampleRows: p.sampleRows === undefined ? DEFAULT_SAMPLE_ROWS : integer(p.sampleRows, `${key}.sampleRows`, 100, 1_000_000),
    fullDataMaxBytes: p.fullDataMaxBytes === undefined
      ? DEFAULT_FULL_DATA_MAX_BYTES
      : integer(p.fullDataMaxBytes, `${key}.fullDataMaxBytes`, 1024 ** 2, 2 ** 50, ' (bytes)'),
  };
}

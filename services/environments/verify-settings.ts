import { array, booleanOr, minutes, object, QUALIFIED_SQL_NAME, string } from './config-values.js';
import { ConfigError } from './config-error.js';

// An environment's `verify`: what the verification after an apply checks and how long the ETL is watched.

export interface VerifyConfig {
  tables: string[];
  indexes: string[];
  /**
   * The runbook's smoke ETL (rehearsal copy and verification). 'auto' (the
   * default): where the StarForge ETL tables exist, else reported as not
   * configured; true: required (missing tables are a warning); false: never.
   */
  smokeEtl: boolean | 'auto';
  watchMinutes: number;
  degradeFactor: number;
  /** The fewest new ETL processing errors that can make a run degraded, whatever the ratio. */
  degradeMinFailures: number;
  /** How long past the watch's end the verdict query is retried while the target is unreachable (minutes). */
  watchRetryMinutes: number;
}

export function parseVerify(value: unknown, key: string): VerifyConfig {
  const v = value === undefined ? {} : object(value, key, ['tables', 'indexes', 'smokeEtl', 'watchMinutes', 'degradeFactor', 'degradeMinFailures', 'watchRetryMinutes']);
  const degradeMinFailures = v.degradeMinFailures === undefined ? 10 : v.degradeMinFailures;
  if (typeof degradeMinFailures !== 'number' || !Number.isInteger(degradeMinFailures) || degradeMinFailures < 1 || degradeMinFailures > 1_000_000) {
    throw new ConfigError(`${key}.degradeMinFailures`, 'must be an integer from 1 to 1000000');
  }
  const degradeFactor = v.degradeFactor === undefined ? 2 : v.degradeFactor;
  if (typeof degradeFactor !== 'number' || !(degradeFactor >= 1) || degradeFactor > 100) {
    throw new ConfigError(`${key}.degradeFactor`, 'must be a number from 1 to 100');
  }
  return {
    tables: array(v.tables, `${key}.tables`, (t, k) => string(t, k, QUALIFIED_SQL_NAME, 'a lower-case table name, optionally schema-qualified')),
    indexes: array(v.indexes, `${key}.indexes`, (t, k) => string(t, k, QUALIFIED_SQL_NAME, 'a lower-case index name, optionally schema-qualified')),
    smokeEtl: v.smokeEtl === undefined || v.smokeEtl === 'auto' ? 'auto' : booleanOr(v.smokeEtl, `${key}.smokeEtl`, "'auto'"),
    watchMinutes: v.watchMinutes === undefined ? 1 : minutes(v.watchMinutes, `${key}.watchMinutes`),
    degradeFactor,
    degradeMinFailures,
    watchRetryMinutes: v.watchRetryMinutes === undefined ? 2 : minutes(v.watchRetryMinutes, `${key}.watchRetryMinutes`),
  };
}

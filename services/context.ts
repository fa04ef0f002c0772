import type pg from 'pg';
import type { AppConfig } from '../src/config/index.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics/registry.js';
import type { TargetDatabases } from './targets.js';

/** What every service factory receives. */
export interface ServiceContext {
  control: pg.Pool;
  config: AppConfig;
  log: Logger;
  targets: TargetDatabases;
  metrics: Metrics;
}

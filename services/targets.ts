import type pg from 'pg';
import { closePool, createPool } from '../database/db.js';
import { describeConnectionError, isConnectionError } from '../database/pg-errors.js';
import type { EnvironmentConfig } from './environments/model.js';
import { ServiceError, unavailable, unprocessable } from './errors.js';
import type { Logger } from './logger.js';

/** Lazily opened, small connection pools to each environment's target database. */
export class TargetDatabases {
  private readonly pools = new Map<string, pg.Pool>();

  constructor(
    private readonly urls: Record<string, string | undefined>,
    private readonly log: Logger,
  ) {}

  isConfigured(environment: string): boolean {
    return this.urls[environment] !== undefined;
  }

  /** The target URL, for tools such as pg_dump. Never log or return it. */
  url(environment: EnvironmentConfig): string {
    const url = this.urls[environment.name];
    if (!url) throw unprocessable(`Environment "${environment.name}" has no database: set ${environment.databaseUrlEnv}.`);
    return url;
  }

  pool(environment: EnvironmentConfig): pg.Pool {
    let pool = this.pools.get(environment.name);
    if (!pool) {
      pool = createPool(this.url(environment), {
        max: 3,
        applicationName: 'starforge-migrations',
        onError: (err) => this.log.warn({ environment: environment.name, reason: describeConnectionError(err) }, 'target connection lost'),
      });
      this.pools.set(environment.name, pool);
    }
    return pool;
  }

  /** Runs `fn` with a target client; a connection failure becomes a 503 that names no host or credential. */
  async withClient<T>(environment: EnvironmentConfig, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const pool = this.pool(environment); // an unconfigured environment is a 422, not an outage
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw unavailable(`Cannot connect to the ${environment.name} database: ${describeConnectionError(err)}.`);
    }
    try {
      return await fn(client);
    } catch (err) {
      // The target went away with a statement in flight: the same outage as
      // failing to connect, so callers can tell it from a statement error.
      if (!(err instanceof ServiceError) && isConnectionError(err)) {
        throw unavailable(`Lost the connection to the ${environment.name} database: ${describeConnectionError(err)}.`);
      }
      // A statement the target refused (permissions, missing objects): say what
      // it said, which names objects but never credentials, instead of a 500.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !(err instanceof ServiceError)) {
        throw unprocessable(`The ${environment.name} database refused a read: ${(err as Error).message} (SQLSTATE ${code}).`, { sqlState: code });
      }
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => closePool(p).catch(() => undefined)));
  }
}

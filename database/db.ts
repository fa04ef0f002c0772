import pg from 'pg';

export interface Query {
  text: string;
  values?: unknown[];
  /**
   * Makes it a named prepared statement: parsed and planned once per
   * connection, then only bound and executed. Only for hot reads with a fixed
   * text and an explicit column list (a `*` would fail with "cached plan must
   * not change result type" once a migration adds a column). Needs session
   * pooling, or PgBouncer >= 1.21 with max_prepared_statements (README).
   */
  name?: string;
}

export type Queryable = Pick<pg.ClientBase, 'query'>;

// The one door to a database: every query is a { text, values } built by a
// function in database/sql/, executed here.
export async function rows<T>(db: Queryable, query: Query): Promise<T[]> {
  const result = await db.query(query);
  return result.rows as T[];
}

export async function maybeOne<T>(db: Queryable, query: Query): Promise<T | undefined> {
  const result = await rows<T>(db, query);
  return result[0];
}

export async function one<T>(db: Queryable, query: Query): Promise<T> {
  const row = await maybeOne<T>(db, query);
  if (row === undefined) throw new Error('query returned no row');
  return row;
}

export async function exec(db: Queryable, query: Query): Promise<number> {
  const result = await db.query(query);
  return result.rowCount ?? 0;
}

/** Runs `fn` in one transaction on a pooled client; rolls back on any error. */
export async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export interface PoolOptions {
  max?: number;
  applicationName?: string;
  connectionTimeoutMillis?: number;
  onError?: (err: Error) => void;
}

export function createPool(connectionString: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'starforge-migrations',
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must never crash the process.
  pool.on('error', (err) => options.onError?.(err));
  // Nor may a checked-out one: pg emits 'error' on a client whose server goes
  // away even while a query is in flight (which fails with the same error), and
  // pg-pool only listens while the client is idle. The failed query reports it.
  const open = new Set<pg.PoolClient>();
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    open.add(client);
  });
  // pg-pool emits 'remove' once a client's connection has really closed.
  pool.on('remove', (client) => open.delete(client));
  OPEN_CLIENTS.set(pool, open);
  return pool;
}

const OPEN_CLIENTS = new WeakMap<pg.Pool, Set<pg.PoolClient>>();

/**
 * pool.end() resolves once every client is taken out of the pool, while
 * their connections are still closing. Shutting the server down right then
 * (the embedded demo stops its PostgreSQL next) terminates those sessions
 * with 57P01 and logs them as lost. This also waits for the connections.
 */
export async function closePool(pool: pg.Pool): Promise<void> {
  const open = OPEN_CLIENTS.get(pool);
  await pool.end();
  if (!open?.size) return;
  await new Promise<void>((resolve) => {
    const check = () => {
      if (open.size) return;
      pool.removeListener('remove', check);
      resolve();
    };
    pool.on('remove', check);
    check();
  });
}

/** Replaces the database name of a postgres URL. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = '/' + encodeURIComponent(database);
  return parsed.toString();
}

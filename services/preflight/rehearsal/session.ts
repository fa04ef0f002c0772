import pg from 'pg';

/**
 * A new session on the copy. Each phase (up, down, up again) gets its own,
 * as a real apply and a later rollback do: temporary tables, SET values and
 * prepared statements of one phase cannot make another pass or fail.
 */
export async function openSession(url: string, options?: string): Promise<pg.Client> {
  // `options`: settings the session starts with (libpq's `-c name=value ...`).
  const client = new pg.Client({ connectionString: url, application_name: 'starforge-rehearsal', ...(options ? { options } : {}) });
  client.on('error', () => undefined); // the query in flight reports a lost server; pg's 'error' event must not crash the process
  await client.connect();
  return client;
}

/** Runs `fn` on a new session, closed afterwards whatever happens. */
export async function inSession<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await openSession(url);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

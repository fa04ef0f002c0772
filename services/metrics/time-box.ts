import type pg from 'pg';
import { exec } from '../../database/db.js';
import { setLocalTimeouts } from '../../database/sql/metrics.js';

export class TimedOut extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${ms} ms`);
    this.name = 'TimedOut';
  }
}

/**
 * Resolves with `work` or rejects with TimedOut after `ms`, whichever comes
 * first. The work itself goes on (a query cannot be abandoned mid-flight);
 * callers bound it with statement_timeout and never start a second one while
 * it runs (see SingleFlight).
 */
export async function timeBox<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimedOut(what, ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One read at a time: a caller arriving while the previous read still runs
 * (say, a target that stopped answering) waits on that read instead of
 * opening another connection, so a hung database never piles up sessions.
 */
export class SingleFlight<T> {
  private running: Promise<T> | null = null;

  constructor(private readonly fn: () => Promise<T>) {}

  run(): Promise<T> {
    if (!this.running) {
      const started = this.fn();
      this.running = started;
      const clear = () => {
        if (this.running === started) this.running = null;
      };
      started.then(clear, clear);
    }
    return this.running;
  }
}

/**
 * Runs `fn` in a read-only transaction whose statements give up after
 * `statementMs` and whose lock waits give up after `lockMs` (a metrics read
 * must never queue behind a migration's ACCESS EXCLUSIVE lock for long).
 */
export async function timedRead<T>(client: pg.ClientBase, statementMs: number, lockMs: number, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  await client.query('BEGIN READ ONLY');
  try {
    await exec(client, setLocalTimeouts(statementMs, lockMs));
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

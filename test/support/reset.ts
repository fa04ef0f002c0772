import type { TestApp } from './app.js';

// Between the tests of one file: nothing of one test's runs or tables is left
// in the way of the next.

/** Once background work is done, cancels every run that has not ended, so the next test can create one in any environment. */
export async function cancelUnfinishedRuns(t: TestApp): Promise<void> {
  await t.settle();
  await t.control.query(`UPDATE runs SET status = 'cancelled' WHERE status NOT IN ('cancelled', 'succeeded', 'failed', 'rejected', 'rolled_back', 'restored', 'preflight_failed', 'verification_failed', 'degraded')`);
}

/** The target's public schema empty again, as in a new database; `also` runs in the same query (e.g. dropping an extension). */
export async function emptyPublicSchema(db: { query(text: string): Promise<unknown> }, also = ''): Promise<void> {
  await db.query(`DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;${also ? ` ${also}` : ''}`);
}

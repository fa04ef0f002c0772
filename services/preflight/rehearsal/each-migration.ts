import type pg from 'pg';
import type { EnvironmentConfig } from '../../environments/model.js';
import { runMigrations, runOne, type StepOutcome } from '../../migrations/run-one.js';
import type { MigrationSource } from '../../migrations/source.js';

// How a rehearsal phase runs its migrations with work of its own between
// them (schema fingerprints, catalog facts, the cluster guard). One
// node-pg-migrate runner call for the phase, the work done in its hook
// between two migrations (run-one.ts `between`): the runner's fixed cost of
// listing, reading and hashing every file and reading the history, paid per
// migration, was most of a rehearsal of a long history. Reads of what is
// committed go on, on other sessions, while the next migration runs, up to
// its COMMIT. A data-bearing rehearsal times each migration through its own
// wrapped client (data-rehearsal measure()): there each migration gets its
// own call and every hook is awaited.

export interface PhaseRun {
  env: EnvironmentConfig;
  secrets: string[];
  source: MigrationSource;
  direction: 'up' | 'down';
  /** The migrations the phase runs, in the order the runner takes them. */
  names: string[];
  /** data-bearing rehearsal (issue 18): wraps each migration's run; one runner call per migration then. */
  measure?: (name: string, client: pg.ClientBase, run: (client: pg.ClientBase) => Promise<StepOutcome>) => Promise<StepOutcome>;
}

/**
 * What a hook leaves running: reads on other sessions of what is committed now
 * (see run-one.ts `between`). Wrapped, because a hook is async: a promise it
 * returned bare would be awaited with it, and the reads would hold up the next
 * migration instead of running beside it.
 */
export type Background = { later: Promise<unknown> } | void;

export interface MigrationHooks {
  /**
   * Reads on other sessions of what is committed, started first, as soon as
   * the migration before `name` committed: they go on while `after` and
   * `before` use the migration's session. Not called when node-pg-migrate
   * refuses `name` outright.
   */
  prefetch?(name: string): Background;
  /** Before `name` sends anything, after the one before it committed (and after `after`); not called when node-pg-migrate refuses `name` outright. */
  before?(name: string): Promise<Background>;
  /** After a migration ran or failed, before the next starts; `expected` is the name it had in `names` (a failure before any migration started has none of its own). */
  after(outcome: StepOutcome, expected: string): Promise<Background>;
}

/** Work left running in the background; `later` settles when it is done. */
export const inBackground = (later: Promise<unknown>): Background => ({ later });

/** Runs `run.names` on `client`, stopping at the first failure; `hooks` see each one. */
export async function eachMigration(client: pg.ClientBase, run: PhaseRun, hooks: MigrationHooks): Promise<void> {
  const { env, secrets, source, direction, names } = run;
  if (run.measure) {
    for (const name of names) {
      const prefetched = hooks.prefetch?.(name);
      await (await hooks.before?.(name))?.later;
      await prefetched?.later;
      const outcome = await run.measure(name, client, (c) => runOne(c, env, direction, { secrets, source }));
      await (await hooks.after(outcome, name))?.later;
      if (outcome.error) return;
    }
    return;
  }
  let done = 0;
  const { completed, failed } = await runMigrations(client, env, direction, names.length, {
    secrets,
    source,
    between: async (next, previous) => {
      const prefetched = hooks.prefetch?.(next);
      // Handled from now on (the background awaits it): a rejection while `after` runs must not count as unhandled.
      prefetched?.later.catch(() => undefined);
      const after = previous ? await hooks.after(previous, names[done++] ?? previous.migration) : undefined;
      const before = await hooks.before?.(next);
      return { background: Promise.all([prefetched?.later, after?.later, before?.later]) };
    },
  });
  for (const outcome of [...completed.slice(done), ...(failed ? [failed] : [])]) await (await hooks.after(outcome, names[done++] ?? outcome.migration))?.later;
}

import { maybeOne } from '../../database/db.js';
import { latestReport } from '../../database/sql/reports.js';
import type { RunRow } from '../../database/sql/runs.js';
import type { ServiceContext } from '../context.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import { sealedSnapshotProblem } from '../migrations/snapshot-store.js';
import type { PreflightReport } from '../preflight/report.js';
import { downVerdicts, irreversibleBlocker } from '../rollback-plan/reversibility.js';

/** Why `down` cannot undo this run (its migrations on the target, `mine`), or null. */
export async function downBlocker(ctx: ServiceContext, run: RunRow, env: EnvironmentConfig, mine: Array<{ name: string }>): Promise<string | null> {
  if (mine.length === 0) {
    return run.status === 'interrupted'
      ? `this run applied no migration, so there is nothing to revert; close it instead (POST /v1/runs/${run.id}/close)`
      : 'this run applied no migration, so there is nothing to revert (use restore if a partial change landed)';
  }
  // `down` runs the approved bytes only: from the run's sealed snapshot.
  const unsealed = await sealedSnapshotProblem(ctx.control, run);
  if (unsealed) return `${unsealed}; \`down\` runs only sealed bytes, so use mode "restore"`;
  const applied = await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env));
  const tail = applied.slice(-mine.length).map((a) => a.name);
  if (tail.join() !== mine.map((m) => m.name).join()) {
    return `the target's latest migrations are ${tail.join(', ') || 'none'}, not this run's (${mine.map((m) => m.name).join(', ')}); later changes sit on top`;
  }
  const preflight = await maybeOne<{ body: PreflightReport }>(ctx.control, latestReport(run.id, 'preflight'));
  return irreversibleBlocker(run.id, downVerdicts(preflight?.body.rehearsal, mine.map((m) => m.name)));
}

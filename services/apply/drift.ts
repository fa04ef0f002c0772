import type { RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { computePending, readAppliedMigrations, readMigrationFiles } from '../migrations/pending.js';
import { sealPendingSet } from '../migrations/seal.js';
import { sealedSnapshotProblem } from '../migrations/snapshot-store.js';

export interface DriftCheck {
  /** Why the approved content and the target no longer match, or null when they do. */
  reason: string | null;
  /** The run's migrations already on the target (a re-apply after an interruption), in order. */
  landed: string[];
  /** The run's migrations still to run, in order. */
  remaining: Array<{ name: string; sha256: string }>;
}

const names = (list: Array<{ name: string }>) => list.map((m) => m.name).join(', ');

/**
 * Whether what is pending on the target is exactly what was approved. For a
 * run none of whose migrations landed that is the approved digest; for a
 * re-apply after an interruption, the landed ones must be the run's first
 * ones and the pending files the approved rest, name by name and sha256 by sha256.
 */
export async function checkDrift(ctx: ServiceContext, run: RunRow, env: EnvironmentConfig): Promise<DriftCheck> {
  const unsealed = await sealedSnapshotProblem(ctx.control, run);
  const files = await readMigrationFiles(env);
  const applied = await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env));
  const onTarget = new Set(applied.map((a) => a.name));
  const landed = run.migrations.filter((m) => onTarget.has(m.name)).map((m) => m.name);
  const remaining = run.migrations.filter((m) => !onTarget.has(m.name)).map((m) => ({ name: m.name, sha256: m.sha256 }));
  const result = (reason: string | null): DriftCheck => ({ reason, landed, remaining });
  if (unsealed) return result(unsealed);
  if (landed.length && run.migrations.slice(0, landed.length).some((m) => !onTarget.has(m.name))) {
    return result(`the target has ${landed.join(', ')} of this run but not every migration before them (${names(run.migrations)})`);
  }
  if (landed.length && remaining.length === 0) return result(null);
  let set;
  try {
    set = computePending(files, applied, env.name, run.target_to ?? undefined);
  } catch (err) {
    return result((err as Error).message);
  }
  // The digest covers the local modules the migrations import, as at preflight.
  const sealed = await sealPendingSet(env, set);
  const unsealable = sealed.problems.find((p) => p.severity === 'error');
  if (unsealable) return result(unsealable.message);
  set = sealed.set;
  const now = names(set.pending);
  if (landed.length === 0) {
    const approved = names(run.migrations);
    if (set.digest === run.digest) return result(null);
    return result(now === approved
      ? `the content of the pending migrations changed since approval (digest ${run.digest.slice(0, 12)}… is now ${set.digest.slice(0, 12)}…)`
      : `the pending set changed since approval (approved: ${approved || 'none'}; now pending: ${now || 'none'})`);
  }
  const same = set.pending.length === remaining.length && set.pending.every((p, i) => p.name === remaining[i]!.name && p.sha256 === remaining[i]!.sha256);
  if (same) return result(null);
  return result(now === names(remaining)
    ? `the content of ${set.pending.filter((p, i) => p.sha256 !== remaining[i]!.sha256).map((p) => p.name).join(', ')} changed since approval`
    : `the pending set changed since approval (approved and not landed: ${names(remaining) || 'none'}; now pending: ${now || 'none'})`);
}

/** Why the approved content and the target no longer match, or null when they do. */
export async function driftOf(ctx: ServiceContext, run: RunRow, env: EnvironmentConfig): Promise<string | null> {
  return (await checkDrift(ctx, run, env)).reason;
}

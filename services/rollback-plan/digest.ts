import { createHash } from 'node:crypto';
import type { AtRisk, RollbackPlan } from './types.js';

/**
 * Row counts enter the digest by order of magnitude ("0", "1e0" for 1-9,
 * "1e2" for 100-999, ">bound"), so ordinary traffic between looking at a plan
 * and approving it does not void the approval, while a table that grew
 * tenfold (or a new table at risk, a changed down SQL, another backup) does.
 */
export function magnitude(rows: number | null, exact: boolean): string {
  if (rows === null) return 'unknown';
  if (!exact) return `>${rows}`;
  if (rows <= 0) return '0';
  return `1e${String(Math.floor(rows)).length - 1}`;
}

const risk = (r: AtRisk) => [r.kind, r.migration, r.table, r.column, r.exists, magnitude(r.rows, r.rowsExact)];

export function planDigest(plan: Omit<RollbackPlan, 'digest' | 'computedAt' | 'window' | 'notes'>): string {
  const canonical = JSON.stringify([
    'rollback-plan/1', plan.runId, plan.environment, plan.mode, plan.blockers,
    plan.down && [plan.down.migrations.map((m) => [m.name, m.reversible, m.sql]), plan.down.drops.map(risk)],
    plan.restore && [
      plan.restore.backup.id,
      plan.restore.writesSinceBackup.known,
      plan.restore.writesSinceBackup.tables.map((t) => [t.table, magnitude(t.inserted + t.updated + t.deleted, true)]),
      plan.restore.tablesDropped.map(risk),
    ],
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

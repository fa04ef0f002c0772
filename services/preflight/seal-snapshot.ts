import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import type { PendingSet } from '../migrations/pending.js';
import { sealPendingSet } from '../migrations/seal.js';
import { storeSnapshot } from '../migrations/snapshot-store.js';
import type { Finding, PreflightCheck } from './report.js';

export interface PreflightSeal {
  /** The pending set carrying the sealed digest (what approvals will bind to). */
  set: PendingSet;
  check: PreflightCheck;
  findings: Finding[];
  /** False when an import cannot be sealed: nothing was stored and preflight fails. */
  stored: boolean;
}

/**
 * Preflight's seal: the pending migrations and every local module they import,
 * stored in the control database under the digest before the rehearsal runs
 * them from there (docs/sealed-snapshot.md).
 */
export async function sealForPreflight(ctx: ServiceContext, runId: string, env: EnvironmentConfig, pending: PendingSet): Promise<PreflightSeal> {
  const { set, snapshot, problems } = await sealPendingSet(env, pending);
  const findings: Finding[] = problems.map((p) => ({
    rule: p.severity === 'error' ? 'import-outside-snapshot' : 'import-unresolved',
    severity: p.severity, migration: p.migration, statement: null, message: p.message, acknowledged: null,
  }));
  const refused = problems.some((p) => p.severity === 'error');
  const modules = snapshot.modules.map((m) => m.path);
  const check: PreflightCheck = {
    id: 'sealed-snapshot',
    status: refused ? 'fail' : 'pass',
    detail: refused
      ? `Not sealed: ${problems.filter((p) => p.severity === 'error').length} import(s) reach files outside the snapshot's closure.`
      : `${snapshot.migrations.length} migration(s) and ${modules.length} imported module(s) sealed under digest ${set.digest.slice(0, 12)}…${modules.length ? `: ${modules.join(', ')}` : ''}.`,
  };
  if (!refused) await storeSnapshot(ctx.control, runId, snapshot);
  return { set, check, findings, stored: !refused };
}

import type { EnvironmentConfig } from '../../environments/model.js';
import { diffSentence } from '../../migrations/schema-fingerprint.js';
import type { Finding } from '../report.js';
import { ruleDocPath, ruleLevel, type RuleLevel } from '../sql-analysis/rule-catalog.js';
import type { ClusterObject, RehearsalResult, RehearsalStep } from './types.js';

// The findings a rehearsal itself produces: a failed step, downs that do not
// restore the schema, state left outside the copy, and a rehearsal that ran
// on the target's own server.

/** Where a mistake costs most; the same test as the default apply mode (services/environments/apply-policy.ts). */
export function isProductionLike(env: Pick<EnvironmentConfig, 'name' | 'approvals'>): boolean {
  return env.name === 'production' || env.approvals.required.includes('sre');
}

/**
 * The levels for this environment: irreversible-down is an error where a
 * mistake costs most, then the environment's own `lint.rules` settings.
 */
export function rehearsalRuleLevels(env: EnvironmentConfig): Record<string, RuleLevel> {
  const configured = env.lint.rules;
  return { ...(isProductionLike(env) ? { 'irreversible-down': 'error' as const } : {}), ...configured };
}

/**
 * " The target was not touched." where that is true: the rehearsal ran on
 * another server, or on the target's own and changed nothing outside its
 * throw-away database there. Otherwise nothing is claimed.
 */
export function untouchedClaim(rehearsal: Pick<RehearsalResult, 'server' | 'clusterObjects'>): string {
  const elsewhere = rehearsal.server?.sameAsTarget === false;
  const leftNothing = (rehearsal.clusterObjects ?? []).every((o) => o.scope === 'database');
  return elsewhere || leftNothing ? ' The target was not touched.' : '';
}

function failureFinding(rehearsal: RehearsalResult, failed: RehearsalStep): Finding | null {
  if (!failed.error) return null;
  const where = failed.error.sqlState ? ` (SQLSTATE ${failed.error.sqlState})` : '';
  const rule = failed.phase === 'up' ? 'rehearsal-failed' : failed.phase === 'down' ? 'rehearsal-down-failed' : 'rehearsal-reapply-failed';
  const what = failed.phase === 'up'
    ? 'failed when applied to a copy of the target'
    : failed.phase === 'down'
      ? 'could not be reverted on the copy (its down migration failed); a rollback of this run would fail the same way'
      : 'failed when re-applied after its down migration; the down does not restore the state its up expects';
  return {
    rule,
    severity: 'error',
    migration: failed.migration,
    statement: failed.error.statement,
    message: `Migration ${failed.migration} ${what}: ${failed.error.message}${where}.${untouchedClaim(rehearsal)}`,
    acknowledged: null,
  };
}

function irreversibleFindings(rehearsal: RehearsalResult, level: RuleLevel): Finding[] {
  if (level === 'off') return [];
  const out: Finding[] = [];
  const consequences = (name: string) => rehearsal.steps
    .filter((s) => s.explainedBy === name && s.migration !== name && s.error)
    .map((s) => ` Afterwards the ${s.phase === 'down' ? 'down' : 'up'} of ${s.migration} failed on the copy: ${s.error!.message}.`)
    .join('');
  for (const [name, verdict] of Object.entries(rehearsal.reversibility ?? {})) {
    if (verdict !== 'irreversible' && verdict !== 'no-down') continue;
    const reapply = rehearsal.steps.find((s) => s.phase === 'up-again' && s.migration === name && !s.ok && s.explainedBy === name);
    const what = verdict === 'no-down'
      ? `has no down migration node-pg-migrate will run (${rehearsal.steps.find((s) => s.phase === 'down' && s.migration === name)?.error?.message ?? 'refused'}), so \`rollback down\` cannot pass it`
      : `has a down migration that does not restore the schema its up found: it ${diffSentence(rehearsal.downDiffs[name]!)}`;
    out.push({
      rule: 'irreversible-down',
      severity: level === 'error' ? 'error' : 'warning',
      migration: name,
      statement: null,
      message: `Migration ${name} ${what}.${reapply ? ` Re-applying it then failed: ${reapply.error!.message}.` : ''}${consequences(name)} ` +
        `A rollback of this run has to restore the backup (mode "restore"). See ${ruleDocPath('irreversible-down')}.`,
      acknowledged: null,
    });
  }
  return out;
}

function describeObject(o: ClusterObject): string {
  const did = o.change === 'created' ? 'creates' : o.change === 'changed' ? 'changes' : 'removes';
  const where = o.scope === 'database'
    ? ' (inside the database: on the target it would stay and act on every schema)'
    : ' (server-wide: shared by every database of the server, outside any backup of the target database)';
  const phase = o.phase === 'up' ? '' : ` in its ${o.phase === 'down' ? 'down' : 'second up'}`;
  return `${did} ${o.kind} ${o.name}${phase}${where}; on the rehearsal server: ${o.cleanup}`;
}

function clusterFindings(rehearsal: RehearsalResult, level: RuleLevel): Finding[] {
  if (level === 'off') return [];
  const byMigration = new Map<string, ClusterObject[]>();
  for (const o of rehearsal.clusterObjects ?? []) byMigration.set(o.migration, [...(byMigration.get(o.migration) ?? []), o]);
  return [...byMigration].map(([migration, objects]) => ({
    rule: 'cluster-global-object',
    severity: level === 'error' ? 'error' as const : 'warning' as const,
    migration,
    statement: null,
    message: `Migration ${migration} ${objects.map(describeObject).join('; ')}. A rollback down or a restore of the database does not undo this; ` +
      `create such objects outside the migrations (provisioning) or make the down remove them. See ${ruleDocPath('cluster-global-object')}.`,
    acknowledged: null,
  }));
}

function serverFinding(rehearsal: RehearsalResult, level: RuleLevel): Finding[] {
  if (level === 'off' || rehearsal.server?.sameAsTarget !== true) return [];
  return [{
    rule: 'rehearsal-on-target-server',
    severity: level === 'error' ? 'error' : 'warning',
    migration: null,
    statement: null,
    message: `The rehearsal ran on the target's own PostgreSQL server (told by ${rehearsal.server.method}): its throw-away databases share the server's CPU, disk and connections ` +
      'with the target, and anything server-wide a migration creates lands next to it. Set PREFLIGHT_DATABASE_URL to a dedicated rehearsal server. ' +
      `See ${ruleDocPath('rehearsal-on-target-server')}.`,
    acknowledged: null,
  }];
}

/** Every finding of the rehearsal, levels from `rehearsalRuleLevels(env)`. */
export function rehearsalFindings(rehearsal: RehearsalResult, env: EnvironmentConfig): Finding[] {
  const levels = rehearsalRuleLevels(env);
  const level = (rule: string): RuleLevel => ruleLevel(rule, levels) ?? 'warning';
  // Each phase stops at its first failure; one that an irreversible down explains is told in that finding instead.
  const failures = rehearsal.steps.filter((s) => !s.ok && !s.explainedBy).flatMap((s) => failureFinding(rehearsal, s) ?? []);
  return [
    ...failures,
    ...irreversibleFindings(rehearsal, level('irreversible-down')),
    ...clusterFindings(rehearsal, level('cluster-global-object')),
    ...serverFinding(rehearsal, level('rehearsal-on-target-server')),
  ];
}

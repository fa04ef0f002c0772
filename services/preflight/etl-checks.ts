// Preflight's view of the StarForge ETL steps of an apply (pause, smoke ETL,
// watch). The service is generic: on a target without the ETL's tables each
// step is listed as not configured (status skip), never as a warning.
import type pg from 'pg';
import type { EnvironmentConfig } from '../environments/model.js';
import { etlPresence, presenceOf, WATCHED_TABLES, type EtlPresence } from '../etl/presence.js';
import type { SmokeOutcome } from '../etl/smoke.js';
import type { Finding, PreflightCheck } from './report.js';

function workersCheck(env: EnvironmentConfig, target: EtlPresence, created: EtlPresence): PreflightCheck {
  const pause = env.workers.pause;
  if (pause.method !== 'sql') return { id: 'etl-workers', status: 'pass', detail: `Workers are paused and resumed with the configured ${pause.method} method.` };
  if (target.control) return { id: 'etl-workers', status: 'pass', detail: 'Workers are paused through etl_control.paused on the target.' };
  return {
    id: 'etl-workers',
    status: 'skip',
    detail: created.control
      ? 'Not configured: the target has no etl_control table before this run (the run creates it), so this apply pauses no workers; later runs pause through it.'
      : 'Not configured: the target has no etl_control table (no StarForge ETL), so the apply pauses and resumes no workers.',
  };
}

function watchCheck(env: EnvironmentConfig, target: EtlPresence, created: EtlPresence): PreflightCheck {
  const after = new Set([...target.present, ...created.present]);
  if (WATCHED_TABLES.every((t) => after.has(t))) {
    return { id: 'etl-watch', status: 'pass', detail: `After verification the ETL is watched for ${env.verify.watchMinutes} min against its pre-apply baseline.` };
  }
  return {
    id: 'etl-watch',
    status: 'skip',
    detail: `Not configured: the target has no StarForge ETL (${WATCHED_TABLES.join(', ')}) and the run creates none, so there is nothing to watch; the run succeeds once verification passes.`,
  };
}

/** The workers and watch checks, from the target's tables and those the run creates (its rehearsal's `created.tables`). */
export async function etlTargetChecks(client: pg.ClientBase, env: EnvironmentConfig, createdTables: readonly string[]): Promise<PreflightCheck[]> {
  const target = await etlPresence(client);
  const created = presenceOf(createdTables);
  return [workersCheck(env, target, created), watchCheck(env, target, created)];
}

export interface SmokeReport {
  check: PreflightCheck | null;
  finding: Finding | null;
  note: string | null;
}

/** How the rehearsal's smoke ETL reads in the report: a check (pass, fail or skip), a finding when it failed, a note when it could not run. */
export function smokeReport(smoke: SmokeOutcome | null, env: EnvironmentConfig, rehearsalFailed: boolean, untouched: string): SmokeReport {
  const none: SmokeReport = { check: null, finding: null, note: null };
  if (smoke?.notConfigured) return { ...none, check: { id: 'rehearsal-smoke-etl', status: 'skip', detail: smoke.detail } };
  if (smoke?.ran) {
    return {
      ...none,
      check: { id: 'rehearsal-smoke-etl', status: smoke.ok ? 'pass' : 'fail', detail: smoke.detail },
      finding: smoke.ok ? null : {
        rule: 'rehearsal-smoke-etl-failed', severity: 'error', migration: null, statement: null, acknowledged: null,
        message: `On the rehearsal copy, ${smoke.detail} The migrations would break the ETL.${untouched}`,
      },
    };
  }
  if (smoke) return { ...none, note: `Smoke ETL on the rehearsal copy not run: ${smoke.detail}` };
  if (!env.verify.smokeEtl) return { ...none, check: { id: 'rehearsal-smoke-etl', status: 'skip', detail: 'Not configured: verify.smokeEtl is false.' } };
  return rehearsalFailed ? none : { ...none, note: 'Smoke ETL on the rehearsal copy not run.' };
}

// The runbook's smoke ETL: one marked snapshot through the real worker code.
// It belongs with the ETL (the preflight rehearsal and verification both run it).
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { exec, maybeOne, one, rows } from '../../database/db.js';
import { deleteSmokeRows, insertSmokeSnapshot, smokeSnapshotState, smokeSummary, smokeTroops } from '../../database/sql/verify.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { etlPresence } from './presence.js';
import { processBatch } from './worker.js';

export interface SmokeOutcome {
  ran: boolean;
  ok: boolean;
  /**
   * verify.smokeEtl 'auto' on a database without the ETL's tables: there is
   * no ETL to smoke-test, which is a project without one, not a problem.
   */
  notConfigured?: boolean;
  detail: string;
  durationMs: number;
}

/** The smoke snapshot: valid, recognisable, with a user id no player can have. */
function smokeSnapshot(runId: string) {
  const userId = `starforge-smoke-${runId}`;
  return {
    userId,
    raw: {
      schemaVersion: 1,
      smoke: true,
      capturedAt: new Date().toISOString(),
      player: { id: userId, name: 'StarForge smoke test', level: 7, guild: null },
      heroes: [{ id: 'h1', name: 'Smoke', level: 3, power: 1200 }, { id: 'h2', name: 'Mirror', level: 2, power: 800 }],
      troops: [{ type: 'infantry', tier: 1, count: 10 }, { type: 'archer', tier: 2, count: 5 }, { type: 'infantry', tier: 1, count: 2 }],
    },
  };
}

/**
 * Runs the runbook's smoke ETL on the target while workers are paused: one
 * marked snapshot through the real worker code, its derived rows checked,
 * everything removed again whatever happens.
 */
export async function smokeEtl(client: pg.ClientBase, env: EnvironmentConfig, runId: string): Promise<SmokeOutcome> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  // The ETL needs all of its tables; a schema that is still being built (a run
  // up to some migration) has no ETL to smoke-test yet.
  const { missing, present } = await etlPresence(client);
  if (missing.length && env.verify.smokeEtl === 'auto') {
    const partly = present.length ? ` (only ${present.join(', ')} exist)` : '';
    return { ran: false, ok: false, notConfigured: true, detail: `Not configured: the database has no StarForge ETL${partly}, so there is no ETL to smoke-test (verify.smokeEtl: true requires it).`, durationMs: took() };
  }
  if (missing.length) {
    return { ran: false, ok: false, detail: `No ETL to smoke-test yet: ${missing.join(', ')} missing.`, durationMs: took() };
  }
  const { userId, raw } = smokeSnapshot(runId);
  let id: string | null = null;
  try {
    const batch = await processBatch(client, env, {
      ignorePause: true,
      prepare: async (tx) => {
        id = (await one<{ id: string }>(tx, insertSmokeSnapshot(userId, raw))).id;
        return id;
      },
    });
    const state = id ? await maybeOne<{ processed_at: Date | null; error_count: number; last_error: string | null }>(client, smokeSnapshotState(id)) : undefined;
    const summary = await maybeOne<{ display_name: string; power: string; hero_count: number; last_snapshot_id: string }>(client, smokeSummary(userId));
    const troops = await rows<{ troop_type: string; tier: number; count: string }>(client, smokeTroops(userId));
    const problems: string[] = [];
    if (batch.claimed !== 1) problems.push(`the worker claimed ${batch.claimed} snapshot(s), expected 1`);
    if (!state?.processed_at) problems.push('processed_at was not set');
    if (state && state.error_count !== 0) problems.push(`error_count is ${state.error_count}: ${state.last_error ?? ''}`);
    if (!summary || summary.last_snapshot_id !== id || Number(summary.power) !== 2000 || summary.hero_count !== 2) {
      problems.push(`user_profile_summary was not upserted as expected (${JSON.stringify(summary ?? null)})`);
    }
    const troopText = troops.map((t) => `${t.troop_type}/${t.tier}=${t.count}`).join(', ');
    if (troopText !== 'archer/2=5, infantry/1=12') problems.push(`user_troops holds ${troopText || 'nothing'}, expected archer/2=5, infantry/1=12`);
    return problems.length
      ? { ran: true, ok: false, detail: `Smoke ETL failed: ${problems.join('; ')}.`, durationMs: took() }
      : { ran: true, ok: true, detail: 'A smoke snapshot was processed by the worker: processed_at set, no error, summary and troops upserted, smoke rows removed.', durationMs: took() };
  } catch (err) {
    return { ran: true, ok: false, detail: `Smoke ETL failed: ${(err as Error).message}.`, durationMs: took() };
  } finally {
    if (id) await exec(client, deleteSmokeRows(id, userId)).catch(() => undefined);
  }
}

// Shared by the operating-policy tests (apply mode, promotion, co-signed
// overrides, rollback plans): a config whose production window is closed now
// (it opens in about three hours, for an hour, daily) and an API wrapper.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';

export const HOUR = 3_600_000;
export const MIN = 60_000;

/** The UTC hour of the daily production window: about three hours from now, so it is closed while the tests run. */
export const WINDOW_HOUR = (new Date().getUTCHours() + 3) % 24;

/** The next instant after `from` whose UTC time is hour:00. */
export function nextAtHour(hour: number, from: Date = new Date()): Date {
  const d = new Date(from);
  d.setUTCMinutes(0, 0, 0);
  while (d.getUTCHours() !== hour || d.getTime() <= from.getTime()) d.setTime(d.getTime() + HOUR);
  return d;
}

export interface PolicyApp {
  t: TestApp;
  stagingDir: string;
  productionDir: string;
  close(): Promise<void>;
}

export interface PolicyConfig {
  label: string;
  /** Source of extra production keys, e.g. `requires: { environment: 'staging' }`. */
  production?: string;
  staging?: string;
  /** Production's windows (default: one closed now, WINDOW_HOUR daily for 60 minutes). */
  productionWindows?: string;
  /** Staging and production read the same directory (promotion compares digests). */
  sharedDir?: boolean;
}

export async function startPolicyApp(opts: PolicyConfig): Promise<PolicyApp> {
  const stagingDir = await mkdtemp(join(tmpdir(), 'sf-policy-stg-'));
  const productionDir = opts.sharedDir ? stagingDir : await mkdtemp(join(tmpdir(), 'sf-policy-prd-'));
  const backups = await mkdtemp(join(tmpdir(), 'sf-policy-backups-'));
  const common = `backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 },
      verify: { smokeEtl: false, watchMinutes: 0 }, lockTimeoutMs: 500, lockRetries: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100 }`;
  const windows = opts.productionWindows ?? `[{ cron: '0 ${WINDOW_HOUR} * * *', durationMinutes: 60, timezone: 'UTC' }]`;
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(stagingDir)}, approvals: { required: ['any'] }, ${common}, ${opts.staging ?? ''} },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(productionDir)}, approvals: { required: ['engineering', 'sre'] },
      windows: ${windows}, ${common}, ${opts.production ?? ''} } } };`;
  const t = await startTestApp({ label: opts.label, migrationConfigSource: config });
  return {
    t,
    stagingDir,
    productionDir,
    async close() {
      await t.close();
      for (const d of new Set([stagingDir, productionDir, backups])) await rm(d, { recursive: true, force: true });
    },
  };
}

export type Events = Array<{ id: number; type: string; actor: string; from: string | null; to: string | null; details: Record<string, any>; at: string }>;

export function policyApi(t: TestApp) {
  const call = (method: 'get' | 'post', path: string, who: Subject, body?: object) => {
    const req = t.http()[method](path).set({ authorization: bearer(who) });
    return body === undefined ? req : req.send(body);
  };
  const run = async (id: string) => (await call('get', `/v1/runs/${id}`, 'vic')).body;
  return {
    call,
    run,
    events: async (id: string) => (await call('get', `/v1/runs/${id}/events`, 'vic')).body as Events,
    /** Creates a run and waits for its preflight to pass. */
    async created(environment: string, description = `policy ${environment}`): Promise<string> {
      const res = await call('post', '/v1/runs', 'alice', { environment, description });
      assert.equal(res.status, 201, res.text);
      await t.settle();
      const got = await run(res.body.id);
      assert.equal(got.status, 'awaiting_approval', JSON.stringify(got.error));
      return res.body.id as string;
    },
    /** All approvals the environment needs; returns the run after the last one. */
    async approve(id: string, environment: string) {
      if (environment === 'production') {
        const eng = await call('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
        assert.equal(eng.status, 201, eng.text);
        const sre = await call('post', `/v1/runs/${id}/approvals`, 'carol', { role: 'sre', decision: 'approve' });
        assert.equal(sre.status, 201, sre.text);
        return sre.body;
      }
      const res = await call('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
      assert.equal(res.status, 201, res.text);
      return res.body;
    },
    plan: async (id: string, mode: 'down' | 'restore', who: Subject = 'carol') => {
      const res = await call('get', `/v1/runs/${id}/rollback/plan?mode=${mode}`, who);
      assert.equal(res.status, 200, res.text);
      return res.body;
    },
    tick: (now: Date) => t.app.services.scheduler.tick(now),
  };
}

/** Waits until `check` holds (stats counters are flushed by the server asynchronously); fails after `tries`. */
export async function eventually(check: () => Promise<boolean>, what: string, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`never happened: ${what}`);
}

export const resetTargets = async (t: TestApp) => {
  await t.settle();
  await t.control.query(`UPDATE runs SET status = 'cancelled' WHERE status IN ('created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled', 'applying', 'verifying', 'monitoring', 'interrupted', 'rolling_back', 'restoring')`);
  await t.control.query(`UPDATE rollback_requests SET status = 'cancelled' WHERE status IN ('awaiting_approval', 'scheduled', 'running')`);
  for (const db of [t.targets.staging, t.targets.production]) {
    await db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;');
  }
};

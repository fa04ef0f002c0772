// Shared by the crash-recovery tests (phase-crash.test.ts, phase-kill.slow.test.ts,
// watch-takeover.test.ts): migrations whose steps can be made slow on a real
// target, one chosen step at a time, and probes of what a run left behind
// (processes in /proc, sessions and advisory locks on the target, the apply
// lock on the control database).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestDatabase } from '../support/db.js';
import { applyMigrations, FIXTURE_BASE, migrationSource as migration } from '../support/migrations.js';
import { callServer, serverToken, waitFor, type ServerProcess } from '../scheduler/server-process.js';

// A step sleeps as many milliseconds as sf_test_slow says (preflight's schema-only copy has no rows: no sleep there).
const slow = (step: string) => `SELECT pg_sleep(coalesce((SELECT ms FROM sf_test_slow WHERE step = '${step}'), 0) / 1000.0)`;

export const PENDING = {
  '2000_add-note': migration(`ALTER TABLE accounts ADD COLUMN note text; ${slow('2000-up')}`, `${slow('2000-down')}; ALTER TABLE accounts DROP COLUMN note`),
  '3000_create-notes': migration(`CREATE TABLE notes (id int PRIMARY KEY); ${slow('3000-up')}`, `${slow('3000-down')}; DROP TABLE notes`),
};
export const PENDING_NAMES = Object.keys(PENDING);

/**
 * Writes the base migrations to `dir`/migrations (returned): FIXTURE_BASE
 * (etl_control, accounts), or WATCHED_BASE where a run must be watched.
 */
export async function writeFixtureMigrations(dir: string, base: Record<string, string> = FIXTURE_BASE): Promise<string> {
  const migrations = join(dir, 'migrations');
  await mkdir(migrations, { recursive: true });
  for (const [name, source] of Object.entries(base)) await writeFile(join(migrations, `${name}.js`), source);
  return migrations;
}

/** A target with the base applied and the slow-step table. */
export async function prepareTarget(target: TestDatabase, migrationsDir: string, base: Record<string, string> = FIXTURE_BASE): Promise<void> {
  await applyMigrations(target.url, migrationsDir, Object.keys(base).length);
  await target.query('CREATE TABLE sf_test_slow (step text PRIMARY KEY, ms int NOT NULL)');
}

export async function addPending(migrationsDir: string): Promise<void> {
  for (const [name, source] of Object.entries(PENDING)) await writeFile(join(migrationsDir, `${name}.js`), source);
}

export async function setSlow(target: TestDatabase, step: string, ms: number): Promise<void> {
  await target.query('INSERT INTO sf_test_slow VALUES ($1, $2) ON CONFLICT (step) DO UPDATE SET ms = EXCLUDED.ms', [step, ms]);
}

export async function clearSlow(target: TestDatabase): Promise<void> {
  await target.query('DELETE FROM sf_test_slow');
}

export const call = (server: ServerProcess, method: string, path: string, who: string, body?: object) => callServer(server, method, path, serverToken(who), body);

export async function runStatus(control: TestDatabase, id: string): Promise<string> {
  return (await control.query('SELECT status FROM runs WHERE id = $1', [id])).rows[0].status as string;
}

export async function waitStatus(control: TestDatabase, id: string, statuses: string[], timeoutMs = 60_000): Promise<string> {
  let seen = '';
  return waitFor(`run ${id} to be ${statuses.join('/')}`, async () => {
    // A run past its expected status never comes back: say where it went.
    const ended = ['failed', 'verification_failed', 'degraded', 'succeeded', 'interrupted', 'rolled_back', 'restored', 'cancelled'];
    const status = await runStatus(control, id);
    if (status === 'preflight_failed') {
      const { rows } = await control.query('SELECT error FROM runs WHERE id = $1', [id]);
      throw new Error(`preflight failed: ${JSON.stringify(rows[0].error)}`);
    }
    if (statuses.includes(status)) return status;
    seen = status;
    if (ended.includes(status)) {
      const { rows } = await control.query('SELECT error FROM runs WHERE id = $1', [id]);
      throw new Error(`the run is ${status}: ${JSON.stringify(rows[0].error)}`);
    }
    return undefined;
  }, timeoutMs, 100).catch((err: Error) => {
    throw new Error(`${err.message} (last seen ${seen})`);
  });
}

/**
 * Creates a run on `environment`, waits for preflight and approves it (the
 * ticking scheduler then applies it); `beforeApproval` runs once preflight passed.
 */
export async function createApproved(server: ServerProcess, control: TestDatabase, environment: string, beforeApproval?: () => Promise<unknown>): Promise<string> {
  const created = await call(server, 'POST', '/v1/runs', 'alice', { environment, description: `crash test ${environment}` });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id as string;
  await waitStatus(control, id, ['awaiting_approval']);
  await beforeApproval?.();
  const approved = await call(server, 'POST', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
  assert.equal(approved.status, 201, JSON.stringify(approved.body));
  return id;
}

/** Asks for a rollback (down or restore) as olga and approves it as carol. */
export async function rollBack(server: ServerProcess, id: string, environment: string, mode: 'down' | 'restore'): Promise<void> {
  const asked = await call(server, 'POST', `/v1/runs/${id}/rollback`, 'olga', { mode, confirm: environment, reason: `test ${mode}` });
  assert.equal(asked.status, 202, JSON.stringify(asked.body));
  const approved = await call(server, 'POST', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: (asked.body as { planDigest: string }).planDigest });
  assert.equal(approved.status, 201, JSON.stringify(approved.body));
}

/** The pid and group of the run's child process of `phase`, once recorded. */
export async function recordedProcess(control: TestDatabase, id: string, phase: string, timeoutMs = 30_000): Promise<{ pid: number; pgid: number }> {
  return waitFor(`a ${phase} process of run ${id}`, async () => {
    const { rows } = await control.query('SELECT pid, pgid FROM run_processes WHERE run_id = $1 AND phase = $2 AND ended_at IS NULL ORDER BY id DESC LIMIT 1', [id, phase]);
    return rows[0] as { pid: number; pgid: number } | undefined;
  }, timeoutMs, 50);
}

/** Waits until the run has a session of `phase` on the target (matching `query` when given). */
export async function waitSession(target: TestDatabase, id: string, phase: string, query?: string, timeoutMs = 60_000): Promise<number> {
  return waitFor(`a ${phase} session of run ${id}`, async () => {
    const { rows } = await target.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND state = 'active' AND ($2::text IS NULL OR query LIKE $2)`, [`starforge-run-${id}-${phase}`, query ?? null]);
    return rows[0]?.pid as number | undefined;
  }, timeoutMs, 50);
}

function stat(pid: number): { state: string; pgrp: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

/** Whether `pid` runs (a zombie does not count). */
export function alive(pid: number): boolean {
  const s = stat(pid);
  return s !== null && s.state !== 'Z';
}

/** Live processes of process group `pgid`. */
export function groupAlive(pgid: number): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    const s = stat(pid);
    return s !== null && s.pgrp === pgid && s.state !== 'Z';
  });
}

export async function waitGone(pid: number, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(`${what} (pid ${pid}) to be gone`, async () => (alive(pid) ? undefined : true), timeoutMs, 50);
}

/** What a run may leave behind: sessions named for runs, advisory locks on the target, apply locks on the control database. */
export async function leftovers(control: TestDatabase, target: TestDatabase): Promise<{ sessions: number; targetLocks: number; applyLocks: number; openProcesses: number }> {
  const t = await target.query(`
    SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'starforge-run-%')::int AS sessions,
           (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))::int AS locks`);
  const c = await control.query(`
    SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7318 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))::int AS locks,
           (SELECT count(*) FROM run_processes WHERE ended_at IS NULL)::int AS processes`);
  return { sessions: t.rows[0].sessions, targetLocks: t.rows[0].locks, applyLocks: c.rows[0].locks, openProcesses: c.rows[0].processes };
}

/** The run's migrations on the target, with how often each is recorded. */
export async function appliedOnTarget(target: TestDatabase): Promise<Array<[string, number]>> {
  const { rows } = await target.query('SELECT name, count(*)::int AS n FROM pgmigrations GROUP BY name ORDER BY min(id)');
  return rows.map((r) => [r.name as string, r.n as number]);
}

export async function eventTypes(control: TestDatabase, id: string): Promise<string[]> {
  return (await control.query('SELECT type FROM run_events WHERE run_id = $1 ORDER BY id', [id])).rows.map((r) => r.type as string);
}

// The service's side of bench/real-history.ts: a preflight of a whole history
// on a fresh target, then approve → apply → done through the HTTP API, with the
// backup and the watch configured away (an external "backup" that only prints
// an id, watchMinutes 0). When the preflight does not pass, nothing can be
// approved: then only the lock-safe migrate of the apply is timed, on its own.
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { migrateControlDatabase } from '../database/control-migrate.js';
import { PROJECT_ROOT } from '../database/paths.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { migrate } from '../services/apply/migrate.js';
import { parseMigrationConfig } from '../services/environments/model.js';
import { listMigrationFiles } from '../services/migrations/files.js';
import { diskSource } from '../services/migrations/source.js';
import type { Finding, PreflightReport } from '../services/preflight/report.js';

export const ENVIRONMENT = 'bench';
const TOKENS = { requester: 'bench-requester-0123456789abcdef', approver: 'bench-approver-0123456789abcdef', operator: 'bench-operator-0123456789abcdef' };
const TERMINAL = ['succeeded', 'failed', 'verification_failed', 'degraded', 'cancelled', 'interrupted'];

export interface ServiceTimings {
  runId: string;
  preflightWallMs: number;
  /** The report's own startedAt → finishedAt. */
  preflightReportMs: number;
  /** Of which the rehearsal (seed, up, down, up on the copy), and the runner time of its steps alone. */
  rehearsalMs: number | null;
  rehearsalStepsMs: number | null;
  outcome: PreflightReport['outcome'];
  findings: Finding[];
  checks: PreflightReport['checks'];
  notes: string[];
  applyWallMs: number | null;
  /** First migration.started → last migration.applied, from the run's audit events (api mode). */
  migratePhaseMs: number | null;
  /** approve → done split by the audit events (api mode). */
  phasesMs: Record<string, number | null> | null;
  finalStatus: string | null;
  applyError: unknown;
  eventTypes: string[];
}

/** The environments file of the bench: defaults everywhere except what approve → done must not include. */
function configSource(dir: string): string {
  return `export default { environments: { ${ENVIRONMENT}: {
    databaseUrlEnv: 'BENCH_TARGET_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)},
    approvals: { required: ['any'] }, apply: { mode: 'confirm' },
    backup: { method: 'external', createCommand: 'echo bench-no-backup', verifyCommand: 'true' },
    verify: { watchMinutes: 0 },
  } } };\n`;
}

async function call(app: FastifyInstance, method: 'GET' | 'POST', url: string, token: string, payload?: object) {
  const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> };
}

export async function serviceRun(opts: { dir: string; controlUrl: string; targetUrl: string }): Promise<ServiceTimings> {
  await migrateControlDatabase(opts.controlUrl);
  const tmp = await mkdtemp(join(tmpdir(), 'sf-bench-real-history-'));
  const configFile = join(tmp, 'migration-config.js');
  await writeFile(configFile, configSource(opts.dir));
  const config = await loadConfig({
    DATABASE_URL: opts.controlUrl, BENCH_TARGET_DATABASE_URL: opts.targetUrl, LOG_LEVEL: 'silent', MIGRATION_CONFIG: configFile,
    DATA_DIR: join(tmp, 'data'), SCHEDULER: 'off',
    AUTH_TOKENS: JSON.stringify([
      { subject: 'requester', roles: ['requester'], token: TOKENS.requester },
      { subject: 'approver', roles: ['engineering'], token: TOKENS.approver },
      { subject: 'operator', roles: ['operator'], token: TOKENS.operator },
    ]),
  });
  const app = await buildApp(config, { logger: false });
  try {
    let started = performance.now();
    const created = await call(app, 'POST', '/v1/runs', TOKENS.requester, { environment: ENVIRONMENT, description: 'bench: real history' });
    if (created.status !== 201) throw new Error(`POST /v1/runs: ${created.status} ${JSON.stringify(created.body)}`);
    const runId = created.body.id as string;
    // Until the report is served (the run leaves preflight_running): what the requester waits for. The copy's
    // DROP DATABASE goes on after that; idle() waits for it before anything else runs.
    for (;;) {
      const status = (await call(app, 'GET', `/v1/runs/${runId}`, TOKENS.requester)).body.status as string;
      if (status !== 'preflight_running' && status !== 'created') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const preflightWallMs = performance.now() - started;
    await app.services.idle();
    const { report } = (await call(app, 'GET', `/v1/runs/${runId}/preflight`, TOKENS.requester)).body as unknown as { report: PreflightReport };
    const result: ServiceTimings = {
      runId, preflightWallMs, preflightReportMs: Date.parse(report.finishedAt) - Date.parse(report.startedAt), outcome: report.outcome,
      rehearsalMs: report.rehearsal?.durationMs ?? null,
      rehearsalStepsMs: report.rehearsal ? Math.round(report.rehearsal.steps.reduce((n, step) => n + step.durationMs, 0)) : null,
      findings: report.findings, checks: report.checks, notes: report.notes,
      applyWallMs: null, migratePhaseMs: null, phasesMs: null, finalStatus: null, applyError: null, eventTypes: [],
    };
    if (report.outcome !== 'passed') return result;

    started = performance.now();
    const approved = await call(app, 'POST', `/v1/runs/${runId}/approvals`, TOKENS.approver, { role: 'engineering', decision: 'approve' });
    if (approved.status !== 201) throw new Error(`approval: ${approved.status} ${JSON.stringify(approved.body)}`);
    const applying = await call(app, 'POST', `/v1/runs/${runId}/apply`, TOKENS.operator, { confirm: ENVIRONMENT, reason: 'bench' });
    if (applying.status !== 202) throw new Error(`apply: ${applying.status} ${JSON.stringify(applying.body)}`);
    let run = (await call(app, 'GET', `/v1/runs/${runId}`, TOKENS.operator)).body;
    // The watch (0 minutes) ends in the background: wait for the terminal status, not just for idle.
    for (;;) {
      await app.services.idle();
      run = (await call(app, 'GET', `/v1/runs/${runId}`, TOKENS.operator)).body;
      if (TERMINAL.includes(run.status as string)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    result.applyWallMs = performance.now() - started;
    result.finalStatus = run.status as string;
    result.applyError = run.error ?? null;
    const events = await app.services.audit.runEvents(runId);
    result.eventTypes = events.map((e) => e.type);
    const first = events.find((e) => e.type === 'migration.started');
    const last = events.filter((e) => e.type === 'migration.applied').at(-1);
    if (first && last) result.migratePhaseMs = Date.parse(last.at) - Date.parse(first.at);
    // Where approve → done goes, between the audit events that bound each part.
    const at = (type: string) => events.find((e) => e.type === type)?.at;
    const span = (from: string | undefined, to: string | undefined) => (from && to ? Date.parse(to) - Date.parse(from) : null);
    result.phasesMs = {
      approveToApplyStarted: span(at('approval.approved'), at('apply.started')),
      beforeFirstMigration: span(at('apply.started'), first?.at),
      migrate: result.migratePhaseMs,
      verify: span(last?.at, at('run.monitoring')),
      watchAndClose: span(at('run.monitoring'), events.at(-1)?.at),
    };
    return result;
  } finally {
    await app.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * A copy of the history (in a temp dir, never the project's files) with a
 * file-level `lint-ack` for each rule that gave an error in that migration:
 * the only way past a finding on the code before issue 16, used to time
 * approve → done anyway. Results on the copy are labelled as such.
 */
export async function ackedCopy(dir: string, findings: Finding[], into: string): Promise<string> {
  // The whole closure root (the directory holding the migrations), so the helpers they import come along.
  const root = join(into, 'acked-history');
  await cp(dirname(dir), root, { recursive: true, filter: (src) => !/[\\/](node_modules|\.git)$/.test(src) });
  const copy = join(root, basename(dir));
  const rulesOf = new Map<string, Set<string>>();
  for (const f of findings) if (f.severity === 'error' && f.migration) rulesOf.set(f.migration, (rulesOf.get(f.migration) ?? new Set()).add(f.rule));
  for (const file of await readdir(copy)) {
    const rules = rulesOf.get(basename(file, extname(file)));
    if (!rules) continue;
    const comment = extname(file) === '.sql' ? '--' : '//';
    const acks = [...rules].map((r) => `${comment} lint-ack: ${r} bench copy, to time approve-to-done on code without per-run acknowledgements\n`).join('');
    await writeFile(join(copy, file), acks + (await readFile(join(copy, file), 'utf8')));
  }
  return copy;
}

/** The apply's lock-safe migrate alone (no API, no backup, no watch): what can be timed when the preflight refuses the run. */
export async function migrateOnly(dir: string, targetUrl: string): Promise<{ ms: number; failure: unknown }> {
  const files = await listMigrationFiles(dir);
  const env = parseMigrationConfig({ environments: { [ENVIRONMENT]: { databaseUrlEnv: 'X', migrationsDir: dir } } }, PROJECT_ROOT)[ENVIRONMENT]!;
  const started = performance.now();
  const result = await migrate({
    environment: env, targetUrl, direction: 'up', migrations: files.map((f) => ({ name: f.name, sha256: f.sha256 })),
    source: async () => diskSource(dir, new Map(files.map((f) => [f.name, f.sha256]))),
    budget: { ...env.lockRetries, deadline: null }, log: () => undefined,
  });
  return { ms: performance.now() - started, failure: result.failure };
}

// npm run bench:scheduler — seconds from a maintenance window opening to the
// apply starting (goal <= 5 s), with a real service process on the default
// 5-second tick. Three environments each have a run scheduled for the same
// window; windows open at second 0 of every 4th minute and at second 3 two
// minutes later (a start that does not line up with a tick). Each round waits
// for a closed minute, creates and approves the runs (mode "now"), and reads
// when the scheduler moved each run to applying (its apply.started event).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startServer, waitFor, type ServerProcess } from '../test/scheduler/server-process.js';
import { benchServer, writeResult } from './support.js';

const ROUNDS = Number(process.env.BENCH_SCHEDULER_ROUNDS ?? 2);
const ENVS = ['b1', 'b2', 'b3'];
const TOKENS = [
  { subject: 'alice', roles: ['requester'], token: 'bench-alice-0123456789abcdef' },
  { subject: 'bob', roles: ['engineering'], token: 'bench-bob-0123456789abcdef' },
];
const WINDOWS = [
  { cron: '0 */4 * * * *', durationMinutes: 1, timezone: 'UTC' },
  { cron: '3 2-59/4 * * * *', durationMinutes: 1, timezone: 'UTC' },
];

async function call(server: ServerProcess, method: string, path: string, who: string, body?: object): Promise<any> {
  const token = TOKENS.find((t) => t.subject === who)!.token;
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const server = await benchServer();
  const dir = await mkdtemp(join(tmpdir(), 'sf-bench-scheduler-'));
  const dbs = [await server.createDatabase('sched_ctl'), ...(await Promise.all(ENVS.map((e) => server.createDatabase(`sched_${e}`))))];
  const [control, ...targets] = dbs as [typeof dbs[number], ...typeof dbs];
  let proc: ServerProcess | undefined;
  try {
    const migrations = join(dir, 'migrations');
    await mkdir(migrations);
    const environments = Object.fromEntries(ENVS.map((e) => [e, {
      databaseUrlEnv: `${e.toUpperCase()}_DATABASE_URL`, migrationsDir: migrations, approvals: { required: ['any'] }, windows: WINDOWS,
      backup: { method: 'pg_dump', dir: join(dir, 'backups') }, verify: { smokeEtl: false, watchMinutes: 0 },
    }]));
    await writeFile(join(dir, 'migration-config.js'), `export default ${JSON.stringify({ environments })};\n`);
    proc = await startServer('bench-scheduler', {
      DATABASE_URL: control.url, MIGRATION_CONFIG: join(dir, 'migration-config.js'), DATA_DIR: join(dir, 'data'),
      AUTH_TOKENS: JSON.stringify(TOKENS), SCHEDULER: 'on', ETL_WORKER: 'off', LOG_LEVEL: 'warn',
      ...Object.fromEntries(ENVS.map((e, i) => [`${e.toUpperCase()}_DATABASE_URL`, targets[i]!.url])),
    });
    const samples: Array<{ window: string; startedAfterSeconds: number }> = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await writeFile(join(migrations, `${1000 + round}_create-t${round}.js`),
        `export const up = (pgm) => { pgm.sql('CREATE TABLE t${round} (id int PRIMARY KEY)'); };\nexport const down = (pgm) => { pgm.sql('DROP TABLE t${round}'); };\n`);
      // Windows are open in even minutes: start in an odd one with room for preflight and approval.
      for (;;) {
        const now = new Date();
        if (now.getUTCMinutes() % 2 === 1 && now.getUTCSeconds() >= 5 && now.getUTCSeconds() < 30) break;
        await sleep(1000);
      }
      const ids: string[] = [];
      for (const env of ENVS) ids.push((await call(proc, 'POST', '/v1/runs', 'alice', { environment: env, description: `bench round ${round}`, schedule: { mode: 'now' } })).id);
      await waitFor('preflights', async () => {
        const runs = await Promise.all(ids.map((id) => call(proc!, 'GET', `/v1/runs/${id}`, 'alice')));
        return runs.every((r) => r.status === 'awaiting_approval') ? true : undefined;
      }, 60_000);
      const scheduled = await Promise.all(ids.map((id) => call(proc!, 'POST', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' })));
      await waitFor('applies', async () => {
        const runs = await Promise.all(ids.map((id) => call(proc!, 'GET', `/v1/runs/${id}`, 'alice')));
        if (runs.some((r) => ['failed', 'verification_failed', 'interrupted'].includes(r.status))) throw new Error(JSON.stringify(runs.map((r) => r.error)));
        return runs.every((r) => r.status === 'succeeded') ? true : undefined;
      }, 180_000, 500);
      const client = new pg.Client({ connectionString: control.url });
      await client.connect();
      try {
        for (const [i, id] of ids.entries()) {
          const { rows } = await client.query(`SELECT created_at FROM run_events WHERE run_id = $1 AND type = 'apply.started'`, [id]);
          const windowStart = new Date(scheduled[i].scheduledFor);
          samples.push({ window: windowStart.toISOString(), startedAfterSeconds: Math.round(((rows[0].created_at as Date).getTime() - windowStart.getTime()) / 10) / 100 });
        }
      } finally {
        await client.end();
      }
      await sleep(61_000 - (Date.now() % 60_000)); // let this window's minute pass
    }
    const latencies = samples.map((s) => s.startedAfterSeconds).sort((a, b) => a - b);
    await writeResult('scheduler', {
      command: 'npm run bench:scheduler',
      tickSeconds: 5,
      environments: ENVS.length,
      rounds: ROUNDS,
      samples,
      p50Seconds: latencies[Math.floor(latencies.length / 2)],
      maxSeconds: latencies[latencies.length - 1],
      goal: '<= 5 s from window open to apply start',
      note: 'One service process, SCHEDULER_TICK_SECONDS=5 (default); one run per environment due at the same window start; measured to the apply.started audit event (the scheduled -> applying transition).',
    });
  } finally {
    await proc?.stop();
    await Promise.all(dbs.map((db) => db.drop()));
    await rm(dir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

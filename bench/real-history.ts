// npm run bench:real-history -- <migrations-dir> [--setup-sql '<sql>'] [--rounds N]
//
// A real project's node-pg-migrate history, read from a directory kept outside
// this repository (none of its code is ever copied here), measured against the
// issue-16 goals:
//   (a) raw `node-pg-migrate up` of the whole history on a fresh database
//       (the CLI from node_modules, --no-check-order --single-transaction false,
//       as the service runs it);
//   (b) the service's preflight of the same history on another fresh target;
//   (c) approve → apply → done through the API without backup and watch
//       (an external backup that only prints an id, watchMinutes 0); if the
//       preflight refuses the run, on a temp copy carrying a lint-ack per
//       error rule (comments only), and the result says so; and the apply's
//       migrate() alone, the floor under approve → done;
//   all of it --rounds times on fresh databases, each round raw, service, raw
//   again: a ratio is the median over rounds of the service's time over the
//   mean of the two raw runs around it (the machine's drift within a round
//   moves both); the medians of the times are reported beside it;
//   (d) `pg_dump --schema-only` of both end schemas, normalised, diffed;
//   (e) every error finding (rule, migration, message) and the ratios.
// --setup-sql runs on every fresh database first (e.g. a CREATE EXTENSION the
// project's deployment provides): a history that needs tweaks to run at all is
// helped there, never by editing its files. The files are hashed before and
// after: the bench fails if anything edited them.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { PROJECT_ROOT } from '../database/paths.js';
import { diffDumps, schemaDump } from '../test/support/schema-dump.js';
import { ackedCopy, migrateOnly, serviceRun, type ServiceTimings } from './real-history-service.js';
import { benchServer, median, writeResult, type BenchServer } from './support.js';

const CLI = resolve(PROJECT_ROOT, 'node_modules/node-pg-migrate/bin/node-pg-migrate.js');
const GOALS = { preflightRatio: 3.5, applyRatio: 1.3 };
const round1 = (n: number) => Math.round(n * 10) / 10;
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

/** sha256 of every file under `dir` (recursively), by relative path. */
async function hashTree(dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of (await readdir(dir)).sort()) {
    const path = join(dir, entry);
    if ((await stat(path)).isDirectory()) Object.assign(out, await hashTree(path, `${prefix}${entry}/`));
    else out[`${prefix}${entry}`] = createHash('sha256').update(await readFile(path)).digest('hex');
  }
  return out;
}

async function freshDatabase(server: BenchServer, label: string, setupSql: string[]) {
  const db = await server.createDatabase(label);
  if (setupSql.length) {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      for (const sql of setupSql) await client.query(sql);
    } finally {
      await client.end();
    }
  }
  return db;
}

function rawUp(dir: string, url: string): number {
  const started = performance.now();
  const run = spawnSync(process.execPath, [CLI, 'up', '-m', dir, '--no-check-order', '--single-transaction', 'false', '--migrations-table', 'pgmigrations'], {
    env: { ...process.env, DATABASE_URL: url }, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024,
  });
  const ms = performance.now() - started;
  if (run.status !== 0) throw new Error(`raw node-pg-migrate up failed:\n${(run.stderr || run.stdout).slice(-4000)}`);
  return ms;
}

async function roleNames(url: string): Promise<Set<string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return new Set((await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname));
  } finally {
    await client.end();
  }
}

/**
 * Roles are cluster-global: the raw and the service's applies leave the ones the
 * history creates on the server after their databases are gone. Dropped here,
 * but only those that are new since the bench started and named in the
 * history's files, never a role something else on the server created meanwhile.
 */
async function dropHistoryRoles(url: string, dir: string, before: Set<string>): Promise<string[]> {
  const text = (await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f), 'utf8').catch(() => '')))).join('\n');
  const created = [...(await roleNames(url))].filter((r) => !before.has(r) && text.includes(r));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const role of created) await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(role)}`).catch(() => undefined);
  } finally {
    await client.end();
  }
  return created;
}

interface Round {
  service: ServiceTimings;
  /** The run that was approved and applied: the history's own, or its acknowledged copy's. */
  applied: ServiceTimings;
  applyMode: 'api' | 'api-on-acked-copy' | 'migrate-only';
  migrateAlone: { ms: number; failure: unknown };
  /** The database holding the service's end schema. */
  serviceUrl: string;
}

/** One preflight → approve → done of the history on fresh databases, plus the apply's migrate() alone. */
async function serviceRound(server: BenchServer, dir: string, setupSql: string[], scratch: string, drops: Array<() => Promise<void>>): Promise<Round> {
  const fresh = async (label: string, setup: string[]) => {
    const db = await freshDatabase(server, label, setup);
    drops.push(db.drop);
    return db;
  };
  const control = await fresh('rh_ctl', []);
  const target = await fresh('rh_tgt', setupSql);
  const service = await serviceRun({ dir, controlUrl: control.url, targetUrl: target.url });
  // The floor under approve → done.
  const other = await fresh('rh_mig', setupSql);
  const migrateAlone = await migrateOnly(dir, other.url);
  if (service.outcome === 'passed') return { service, applied: service, applyMode: 'api', migrateAlone, serviceUrl: target.url };
  // Without a passing preflight nothing can be approved: time approve → done on an acknowledged copy instead, and say so.
  await mkdir(scratch, { recursive: true });
  const copy = await ackedCopy(dir, service.findings, scratch);
  const control2 = await fresh('rh_ctl2', []);
  const target2 = await fresh('rh_tgt2', setupSql);
  const applied = await serviceRun({ dir: copy, controlUrl: control2.url, targetUrl: target2.url });
  const passed = applied.outcome === 'passed';
  return { service, applied, applyMode: passed ? 'api-on-acked-copy' : 'migrate-only', migrateAlone, serviceUrl: passed ? target2.url : other.url };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'setup-sql': { type: 'string', multiple: true }, rounds: { type: 'string' } } });
  const dirArg = positionals[0] ?? process.env.REAL_HISTORY_DIR;
  if (!dirArg) {
    // `npm run bench` runs every bench without arguments: say why this one did nothing instead of failing the set.
    process.stderr.write('bench:real-history skipped: pass a migrations directory kept outside this repository (npm run bench:real-history -- /path/to/migrations) or set REAL_HISTORY_DIR\n');
    return;
  }
  const dir = resolve(dirArg);
  const setupSql = values['setup-sql'] ?? [];
  const rounds = Number(values.rounds ?? process.env.BENCH_REAL_HISTORY_ROUNDS ?? 3);
  const filesBefore = await hashTree(dir);
  const migrations = Object.keys(filesBefore).filter((f) => !f.includes('/'));
  const kinds = migrations.reduce<Record<string, number>>((k, f) => ({ ...k, [f.slice(f.lastIndexOf('.'))]: (k[f.slice(f.lastIndexOf('.'))] ?? 0) + 1 }), {});

  const server = await benchServer();
  const dropLater: Array<() => Promise<void>> = [];
  const rolesBefore = await roleNames(server.url);
  let leftRoles: string[] = [];
  try {
    // (a), (b), (c) in turn, `rounds` times, each on fresh databases (raw and service side by side,
    // so both see the same load); the last round's databases are kept for the schema diff.
    const tmp = await mkdtemp(join(tmpdir(), 'sf-bench-acked-'));
    dropLater.push(() => rm(tmp, { recursive: true, force: true }));
    const raw: number[] = [];
    const rawPairs: Array<[number, number]> = [];
    let rawUrl = '';
    const serviceRounds: Round[] = [];
    for (let i = 0; i < rounds; i++) {
      const keep = i === rounds - 1;
      const drops: Array<() => Promise<void>> = [];
      const db = await freshDatabase(server, 'rh_raw', setupSql);
      drops.push(db.drop);
      const rawBefore = rawUp(dir, db.url);
      rawUrl = db.url;
      const round = await serviceRound(server, dir, setupSql, join(tmp, String(i)), drops);
      serviceRounds.push(round);
      // The raw run again right after, on another fresh database: the round's baseline is the mean of the two
      // runs around the service's, which the machine's drift over a round moves the same way.
      const after = await freshDatabase(server, 'rh_raw2', setupSql);
      const rawAfter = rawUp(dir, after.url);
      await after.drop();
      raw.push((rawBefore + rawAfter) / 2);
      rawPairs.push([rawBefore, rawAfter]);
      process.stderr.write(`round ${i + 1}/${rounds}: raw ${Math.round(rawBefore)}/${Math.round(rawAfter)} ms, preflight ${Math.round(round.service.preflightWallMs)} ms (${round.service.outcome}), ` +
        `${round.applyMode} ${Math.round(round.applyMode === 'migrate-only' ? round.migrateAlone.ms : round.applied.applyWallMs ?? 0)} ms, migrate() alone ${Math.round(round.migrateAlone.ms)} ms\n`);
      if (keep) dropLater.push(...drops);
      else for (const drop of drops.reverse()) await drop();
    }
    const rawMs = median(raw);
    const last = serviceRounds.at(-1)!;
    const { service, applied, applyMode, serviceUrl } = last;
    const preflightMs = median(serviceRounds.map((r) => r.service.preflightWallMs));
    const migrateAloneMs = median(serviceRounds.map((r) => r.migrateAlone.ms));
    const applyMs = applyMode === 'migrate-only' ? migrateAloneMs : median(serviceRounds.map((r) => r.applied.applyWallMs ?? Number.NaN));

    // (d) end schemas.
    const diff = diffDumps(await schemaDump(rawUrl), await schemaDump(serviceUrl));
    const filesAfter = await hashTree(dir);
    const filesUnchanged = JSON.stringify(filesBefore) === JSON.stringify(filesAfter);

    // (e) findings and ratios.
    const errors = service.findings.filter((f) => f.severity === 'error' && !f.acknowledged);
    const warnings = service.findings.filter((f) => f.severity === 'warning');
    const byRule = (list: typeof errors) => list.reduce<Record<string, number>>((m, f) => ({ ...m, [f.rule]: (m[f.rule] ?? 0) + 1 }), {});
    // The ratio: the median of each round's service time over that round's own baseline (raw runs before and after it).
    const perRound = (ms: (r: Round) => number) => serviceRounds.map((r, i) => ms(r) / raw[i]!);
    const applyOf = (r: Round) => (applyMode === 'migrate-only' ? r.migrateAlone.ms : r.applied.applyWallMs ?? Number.NaN);
    const preflightRatios = perRound((r) => r.service.preflightWallMs);
    const applyRatios = perRound(applyOf);
    const preflightRatio = ratio(median(preflightRatios), 1);
    const applyRatio = ratio(median(applyRatios), 1);
    await writeResult('real-history', {
      command: `npm run bench:real-history -- ${dirArg}${setupSql.map((s) => ` --setup-sql ${JSON.stringify(s)}`).join('')} --rounds ${rounds}`,
      rounds,
      migrations: migrations.length,
      kinds,
      rawCliMs: round1(rawMs),
      rawCliAllMs: rawPairs.map(([a, b]) => [round1(a), round1(b)]),
      ratioMethod: 'median over rounds of (service time / mean of the raw runs right before and right after it)',
      preflight: {
        wallMs: round1(preflightMs), allWallMs: serviceRounds.map((r) => round1(r.service.preflightWallMs)), reportMs: service.preflightReportMs, rehearsalMs: service.rehearsalMs,
        rehearsalStepsMs: service.rehearsalStepsMs, outcome: service.outcome, ratio: preflightRatio, roundRatios: preflightRatios.map((r) => ratio(r, 1)),
        ratioOfMedians: ratio(preflightMs, rawMs), goal: `<= ${GOALS.preflightRatio}`,
      },
      apply: {
        mode: applyMode,
        ms: round1(applyMs),
        allMs: serviceRounds.map((r) => round1(applyOf(r))),
        roundRatios: applyRatios.map((r) => ratio(r, 1)),
        ratioOfMedians: ratio(applyMs, rawMs),
        migratePhaseMs: applied.migratePhaseMs,
        phasesMs: applied.phasesMs,
        finalStatus: applied.finalStatus,
        error: applied.applyError,
        ratio: applyRatio,
        goal: `<= ${GOALS.applyRatio}`,
        migrateOnlyMs: round1(migrateAloneMs),
        migrateOnlyRatio: ratio(migrateAloneMs, rawMs),
        migrateOnlyFailure: last.migrateAlone.failure,
        note: {
          api: 'approve → apply → terminal status through the API; backup = an external command printing an id, watchMinutes 0, worker pause and verification as by default',
          'api-on-acked-copy': 'the preflight did not pass, so the history itself cannot be approved: approve → done was timed on a temp copy with a file-level lint-ack per error rule (comments only, same SQL); backup = an external command printing an id, watchMinutes 0',
          'migrate-only': 'no preflight passed, not even on an acknowledged copy: this is the apply\'s lock-safe migrate() alone (no API, pause, backup, verification or watch) on a fresh database',
        }[applyMode],
      },
      ackedCopy: applied === service ? null : { preflightWallMs: round1(applied.preflightWallMs), outcome: applied.outcome, errorsLeft: applied.findings.filter((f) => f.severity === 'error').map((f) => `${f.rule} (${f.migration})`) },
      errorFindings: errors.map((f) => ({ rule: f.rule, migration: f.migration, message: f.message })),
      errorsByRule: byRule(errors),
      warningsByRule: byRule(warnings),
      checks: service.checks.filter((c) => c.status !== 'pass'),
      notes: service.notes,
      schemaDiff: { identical: diff.identical, onlyRaw: diff.onlyInFirst.slice(0, 50), onlyService: diff.onlyInSecond.slice(0, 50) },
      filesUnchanged,
      meetsGoals: {
        preflightRatio: preflightRatio <= GOALS.preflightRatio,
        applyRatio: applyMode === 'api' && applyRatio <= GOALS.applyRatio,
        noErrorFindings: errors.length === 0,
        identicalSchema: diff.identical,
        noFileEdits: filesUnchanged,
      },
    });
    if (!filesUnchanged) throw new Error(`the migrations directory changed during the bench: ${dir}`);
  } finally {
    for (const drop of dropLater.reverse()) await drop().catch(() => undefined);
    leftRoles = await dropHistoryRoles(server.url, dir, rolesBefore);
    if (leftRoles.length) process.stderr.write(`dropped the role(s) the history created on the server: ${leftRoles.join(', ')}\n`);
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

import type { RunRow } from '../../database/sql/runs.js';
import type { ServiceContext } from '../context.js';
import { ServiceError } from '../errors.js';
import type { MigrationFile } from '../migrations/files.js';
import { computePending, readAppliedMigrations, readMigrationFiles, type PendingSet } from '../migrations/pending.js';
import { materializeSnapshot } from '../migrations/snapshot.js';
import { checkTarget, serverFactsOf } from './checks.js';
import { createEphemeralDatabase, ownerTag, rehearsalDatabaseName } from './ephemeral.js';
import { estimateImpact } from './impact.js';
import { smokeReport } from './etl-checks.js';
import { timeoutFindings } from './estimate/timeouts.js';
import { rehearse, type UpComplete } from './rehearsal.js';
// Rehearsal findings, check detail and notes (issue 16: isolation, reversibility, what was not rehearsed).
import { rehearsalFindings, untouchedClaim } from './rehearsal/findings.js';
import { rehearsalDetail, rehearsalNotes } from './rehearsal/summary.js';
import { sweptEarlierNotes } from './rehearsal/swept-note.js';
import { sealForPreflight } from './seal-snapshot.js';
import type { Finding, PreflightCheck, PreflightReport } from './report.js';
import { applyAcknowledgements, createdExtensions, withRuleLevels } from './sql-analysis/index.js';
import { lintFollower } from './lint-follower.js';
import { judgeObserved, mergeObserved, readPreExisting } from './observe/index.js';
import { withFindingIds } from './finding-id.js';
import { readLintBaseline, type LintBaseline } from './lint-baseline.js';
// data-bearing rehearsal (issue 18)
import { dataRehearsalFindings, dataRehearsalNotes, dataRehearsalSection, latestVerifiedBackup, withoutCopiedValues } from './data-rehearsal/index.js';


// The sealed bytes (read once, when hashed), not the file as it is now.
function sources(files: MigrationFile[], names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of names) {
    const file = files.find((f) => f.name === name);
    if (file) out.set(name, file.bytes.toString('utf8'));
  }
  return out;
}

export interface BuiltPreflight {
  report: PreflightReport;
  set: PendingSet | null;
  /**
   * The rehearsal copy's DROP DATABASE, still going on when the report is
   * ready (it can take longer than everything after the rehearsal): the
   * caller stores the report first and awaits this before the job ends.
   * Never rejects; a drop that failed is the caller's to log (the orphan
   * sweep drops the copy later).
   */
  copyDropped: Promise<void>;
}

/**
 * The full preflight of a run: the pending set on the real target, a
 * rehearsal on a throw-away copy (up, down, up), lint of the SQL the
 * rehearsal ran, read-only target checks and impact estimates.
 */
export async function buildPreflightReport(ctx: ServiceContext, run: RunRow): Promise<BuiltPreflight> {
  const startedAt = new Date().toISOString();
  const checks: PreflightCheck[] = [];
  const findings: Finding[] = [];
  const notes: string[] = [];
  // The copy's drop, once the rehearsal hands it over: the caller awaits it after storing the report.
  let copyDropped: Promise<void> = Promise.resolve();
  const finish = (set: PendingSet | null, extra: Partial<PreflightReport> = {}): BuiltPreflight => ({
    set,
    copyDropped,
    report: {
      runId: run.id,
      environment: run.environment,
      outcome: findings.some((f) => f.severity === 'error') ? 'failed' : 'passed',
      scope: 'full',
      digest: set?.digest ?? run.digest,
      migrations: set ? set.pending.map((m) => ({ name: m.name, sha256: m.sha256 })) : run.migrations,
      server: null,
      checks,
      // Ids name findings for acknowledgements (finding-id.ts).
      findings: withFindingIds(findings),
      rehearsal: null,
      impact: null,
      dataRehearsal: null, // data-bearing rehearsal (issue 18)
      notes,
      startedAt,
      finishedAt: new Date().toISOString(),
      ...extra,
    },
  });
  const fail = (rule: string, message: string) => findings.push({ rule, severity: 'error', migration: null, statement: null, message, acknowledged: null });

  const env = ctx.config.environments[run.environment];
  if (!env) {
    fail('unknown-environment', `Environment "${run.environment}" is no longer configured.`);
    return finish(null);
  }
  let files: MigrationFile[];
  let set: PendingSet;
  let facts: Awaited<ReturnType<typeof serverFactsOf>>;
  let baseline: LintBaseline;
  try {
    files = await readMigrationFiles(env);
    ({ set, facts, baseline } = await ctx.targets.withClient(env, async (client) => {
      const applied = await readAppliedMigrations(client, env);
      // The target's relations before the run: what the lint treats as existing (lint-baseline.ts).
      return { facts: await serverFactsOf(client), baseline: await readLintBaseline(client), set: computePending(files, applied, env.name, run.target_to ?? undefined) };
    }));
  } catch (err) {
    if (!(err instanceof ServiceError)) throw err;
    const rule = typeof err.extra.rule === 'string' ? err.extra.rule : err.statusCode === 503 ? 'target-unreachable' : 'pending-set-invalid';
    checks.push({ id: rule === 'target-unreachable' ? 'connectivity' : 'pending-set', status: 'fail', detail: err.message });
    fail(rule, err.message);
    return finish(null);
  }
  checks.push({ id: 'pending-set', status: set.pending.length ? 'pass' : 'fail', detail: `${set.pending.length} pending migration(s) after ${set.applied.length} applied.` });
  if (set.pending.length === 0) {
    fail('nothing-to-apply', `Every migration is already applied to ${env.name}; cancel this run.`);
    return finish(set);
  }
  // Seal what the digest covers (migrations and the local modules they import) before anything runs it.
  const seal = await sealForPreflight(ctx, run.id, env, set);
  set = seal.set;
  checks.push(seal.check);
  findings.push(...seal.findings);
  if (!seal.stored) return finish(set);
  if (set.digest !== run.digest) {
    findings.push({
      rule: 'content-changed', severity: 'info', migration: null, statement: null, acknowledged: null,
      message: 'The pending migrations changed since the run was created; the run now carries the new digest and earlier approvals no longer count.',
    });
  }

  const pendingNames = set.pending.map((m) => m.name);
  const texts = sources(files, pendingNames);
  const fileTypes = new Map(files.map((f) => [f.name, f.file.toLowerCase().endsWith('.sql') ? 'sql' as const : 'js' as const]));
  const levels = env.lint.rules;
  const linter = lintFollower({ baseline, files, texts, serverMajor: Math.floor(facts.version_num / 10000), ruleLevels: levels });
  // The target's read-only checks and impact estimates need only the up phase: with every up done, they run
  // beside the down and up-again phases instead of after them.
  const readTarget = async (up: UpComplete) => {
    const observations = pendingNames.flatMap((n) => up.traces[n]?.observed ?? []);
    const extensions = await createdExtensions(pendingNames.flatMap((n) => up.traces[n]?.statements ?? []));
    return ctx.targets.withClient(env, async (client) => ({
      observations,
      checked: await checkTarget(client, ctx.control, env, files, set.applied.map((a) => a.name), extensions, ctx.config.dataDir, up.created?.tables ?? []),
      impact: await estimateImpact(client, up, pendingNames, { control: ctx.control, env }),
      preExisting: await readPreExisting(client, observations),
    }));
  };
  const early: { read?: ReturnType<typeof readTarget> } = {};
  const serverUrl = ctx.config.preflightDatabaseUrl ?? ctx.config.databaseUrl!;
  const owner = ownerTag(ctx.config.databaseUrl!);
  // The copy's CREATE DATABASE (much of a rehearsal's fixed cost) goes on while the snapshot is written out.
  const copyName = rehearsalDatabaseName(owner, run.id);
  const copy = { name: copyName, created: createEphemeralDatabase(serverUrl, owner, run.id, copyName) };
  copy.created.catch(() => undefined);
  let latestBackup, source;
  try {
    latestBackup = await latestVerifiedBackup(ctx.control, env); // data-bearing rehearsal (issue 18)
    source = await materializeSnapshot(ctx.control, run.id, { digest: set.digest, dataDir: ctx.config.dataDir });
  } catch (err) {
    await copy.created.then((db) => db.drop()).catch(() => undefined);
    throw err;
  }
  const rehearsal = await rehearse({
    runId: run.id,
    environment: env,
    targetUrl: ctx.targets.url(env),
    targetServerMajor: Math.floor(facts.version_num / 10000),
    serverUrl,
    owner,
    copy,
    applied: set.applied,
    pending: pendingNames,
    source,
    latestBackup, // data-bearing rehearsal (issue 18)
    ledger: { control: ctx.control, digest: set.digest, log: ctx.log },
    deferCopyDrop: (dropping) => {
      copyDropped = dropping.catch((err: Error) => {
        ctx.log.warn({ runId: run.id, reason: err.message }, 'dropping the rehearsal copy failed; the orphan sweep drops it later');
      });
    },
    onTrace: linter.onTrace,
    // data-bearing rehearsal (issue 18): its traces may carry copied values until withoutCopiedValues() below.
    onUpComplete: env.preflight.data === 'schema' ? (up) => {
      early.read = readTarget(up);
      // Awaited below, unless the rehearsal throws first.
      early.read.catch(() => undefined);
    } : undefined,
  }).finally(() => source.cleanup());
  // data-bearing rehearsal (issue 18): no copied row value may reach a message below.
  withoutCopiedValues(rehearsal);
  findings.push(...dataRehearsalFindings(rehearsal.data));
  notes.push(...dataRehearsalNotes(rehearsal.data, rehearsal.failed?.error?.sqlState ?? null));
  // --- rehearsal: check, notes (rehearsal/summary.ts) ---
  const irreversible = Object.values(rehearsal.reversibility).some((v) => v === 'irreversible' || v === 'no-down');
  checks.push({ id: 'rehearsal', status: rehearsal.failed ? 'fail' : irreversible ? 'warn' : 'pass', detail: rehearsalDetail(rehearsal, pendingNames.length) });
  if (rehearsal.seedNote) notes.push(rehearsal.seedNote);
  notes.push(...rehearsalNotes(rehearsal));
  notes.push(...(await sweptEarlierNotes(ctx.control, run.id)));
  // --- end rehearsal ---
  const smoke = smokeReport(rehearsal.smoke, env, rehearsal.failed !== null, untouchedClaim(rehearsal));
  if (smoke.check) checks.push(smoke.check);
  if (smoke.finding) findings.push(smoke.finding);
  if (smoke.note) notes.push(smoke.note);

  notes.push(`Lint baseline: the ${baseline.relations.length} relation(s) on the target before the run (${baseline.relations.filter((r) => r.rows > 0 || r.bytes > 0).length} holding data); search_path ${baseline.searchPath.join(', ') || '(no existing schema)'}.`);
  const lint = await linter.done(pendingNames, rehearsal.traces);
  findings.push(...lint, ...(await applyAcknowledgements(rehearsalFindings(rehearsal, env), texts, fileTypes)));
  const { traces: _traces, data: _data, ...rehearsalSummary } = rehearsal; // data-bearing rehearsal (issue 18): data is its own section
  let targetChecks;
  try {
    targetChecks = await (early.read ?? readTarget(rehearsal));
  } catch (err) {
    // The target went away after the rehearsal: a failed preflight that says so, not a run left preflight_running.
    if (!(err instanceof ServiceError) || err.statusCode !== 503) throw err;
    checks.push({ id: 'connectivity', status: 'fail', detail: err.message });
    fail('target-unreachable', `${err.message} Preflight could not finish its checks on the target; re-run it once the target is reachable.`);
    // data-bearing rehearsal (issue 18): no impact, so no static estimates beside the scaled ones.
    return finish(set, { server: { version: facts.version }, rehearsal: rehearsalSummary, dataRehearsal: dataRehearsalSection(rehearsal.data, null) });
  }
  const { checked, impact, preExisting, observations } = targetChecks;
  checks.unshift(...checked.checks);
  // What the rehearsal saw, judged against what the target holds; a static finding on the same table absorbs it.
  const observed = await applyAcknowledgements(withRuleLevels(judgeObserved(observations, preExisting), levels), texts, fileTypes);
  findings.splice(0, findings.length, ...mergeObserved(findings, observed));
  const methods = [...new Set(observations.map((o) => o.method))];
  if (methods.length) notes.push(`Observed effects: ${methods.join(', ')}${observations[0]?.notes.length ? ` (${observations[0].notes.join('; ')})` : ''}.`);
  findings.push(...checked.findings, ...timeoutFindings(impact, env));
  // data-bearing rehearsal (issue 18): the scaled estimates beside the static ones.
  return finish(set, { server: { version: facts.version }, rehearsal: rehearsalSummary, impact, dataRehearsal: dataRehearsalSection(rehearsal.data, impact) });
}

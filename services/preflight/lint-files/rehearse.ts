import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { exec, rows, withDatabase } from '../../../database/db.js';
import { createDatabase, dropDatabase, LINT_DB_PREFIX, REHEARSAL_DB_PREFIX, userTables } from '../../../database/sql/preflight.js';
import type { EnvironmentConfig } from '../../environments/model.js';
import { diskSource } from '../../migrations/source.js';
import { runPgTool } from '../../pg-tools.js';
import { schemaFactsReader } from '../catalog-facts.js';
import { beginObserved, collectObserved, installObserver, judgeObserved, mergeObserved, readPreExisting, type Observation } from '../observe/index.js';
import { createRunLinter, lintMigration } from '../sql-analysis/index.js';
import type { RunBaseline } from '../sql-analysis/lint-run.js';
import { ClusterGuard } from '../rehearsal/cluster-guard.js';
import { eachMigration } from '../rehearsal/each-migration.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';
import { ruleDocPath, ruleLevel } from '../sql-analysis/rule-catalog.js';
import { lineOf, type MigrationSource } from './collect.js';
import { connect } from './target.js';
import type { FileFinding, LintRunOptions } from './types.js';

export interface RehearsalSetup {
  /** A server on which a throw-away database may be created. */
  serverUrl: string;
  /** A database whose schema (only) the throw-away copy starts from; none: an empty database. */
  seedFrom?: string;
  serverMajor: number;
  /** What exists before the migrations (the database behind --database-url); absent: each file sees the copy as it is before it. */
  baseline?: RunBaseline;
}

export interface RehearsalLint {
  findings: FileFinding[];
  notes: string[];
}

const LINT_TABLE = 'sfm_lint_migrations';

async function withServer<T>(url: string, fn: (client: import('pg').Client) => Promise<T>): Promise<T> {
  const client = await connect(url, 'sfm-lint');
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs the migrations, in order, on a throw-away database (seeded with the
 * schema of `seedFrom`), capturing exactly the SQL each one sends, and lints
 * it: what a JS/TS migration does is only known once it has run. The copy is
 * dropped whatever happens; `seedFrom` is only read.
 */
export async function lintByRehearsal(files: MigrationSource[], setup: RehearsalSetup, options: LintRunOptions): Promise<RehearsalLint> {
  const name = `${LINT_DB_PREFIX}${randomBytes(6).toString('hex')}`;
  // Roles, databases, tablespaces a migration creates outside the copy: named, and dropped again afterwards.
  const guard = await ClusterGuard.open(setup.serverUrl, { ignoreDatabasePrefixes: [REHEARSAL_DB_PREFIX, LINT_DB_PREFIX] });
  const findings: FileFinding[] = [];
  try {
    await withServer(setup.serverUrl, (c) => exec(c, createDatabase(c.escapeIdentifier(name))));
    const lint = await lintOnCopy(files, setup, options, name, guard);
    findings.push(...lint.findings, ...clusterFindings(files, guard, options));
    return { findings, notes: lint.notes };
  } finally {
    await guard.close();
  }
}

function clusterFindings(files: MigrationSource[], guard: ClusterGuard, options: LintRunOptions): FileFinding[] {
  if (ruleLevel('cluster-global-object', options.ruleLevels) === 'off') return [];
  return guard.objects().map((o) => {
    const file = files.find((f) => f.name === o.migration);
    return {
      rule: 'cluster-global-object', severity: ruleLevel('cluster-global-object', options.ruleLevels) === 'error' ? 'error' : 'warning',
      migration: o.migration, path: file?.path ?? '', line: file ? lineOf(file.text, '') : 1, statement: '', acknowledged: null,
      message: `Migration ${o.migration} ${o.change === 'created' ? 'creates' : o.change === 'changed' ? 'changes' : 'removes'} ${o.kind} ${o.name}, ` +
        `outside the database's schema (a rollback or a restore of the database does not undo it); on the server it ran on: ${o.cleanup}. See ${ruleDocPath('cluster-global-object')}.`,
    };
  });
}

async function lintOnCopy(files: MigrationSource[], setup: RehearsalSetup, options: LintRunOptions, name: string, guard: ClusterGuard): Promise<RehearsalLint> {
  const url = withDatabase(setup.serverUrl, name);
  const dir = await mkdtemp(join(tmpdir(), 'sfm-lint-'));
  const secrets = [setup.serverUrl, ...(setup.seedFrom ? [setup.seedFrom] : [])];
  try {
    if (setup.seedFrom) {
      const dump = join(dir, 'schema.dump');
      await runPgTool('pg_dump', ['--schema-only', '--format=custom', '--no-owner', '--no-privileges', `--file=${dump}`], setup.seedFrom);
      await runPgTool('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', `--dbname=${name}`, dump], url);
    }
    const migrations = join(dir, 'migrations');
    await mkdir(migrations);
    for (const f of files) await copyFile(f.path, join(migrations, basename(f.path)));
    // The runner reads only where the files are and where it keeps its history.
    const env = { migrationsDir: migrations, migrationsTable: LINT_TABLE, migrationsSchema: 'public' } as EnvironmentConfig;
    const source = diskSource(migrations);
    const client = await connect(url, 'sfm-lint-rehearsal');
    const findings: FileFinding[] = [];
    const notes: string[] = [];
    const observations: Observation[] = [];
    try {
      const method = await installObserver(client, { url });
      const runLinter = setup.baseline ? createRunLinter(setup.baseline) : null;
      await guard.baselineCopy(client);
      const readFacts = schemaFactsReader();
      const befores = new Map<string, { tablesBefore: Set<string> | null; facts: SchemaFacts }>();
      const readBefore = async () => ({
        tablesBefore: runLinter ? null : new Set((await rows<{ name: string }>(client, userTables())).map((r) => r.name.toLowerCase())),
        facts: await readFacts(client),
      });
      const byName = new Map(files.map((f) => [f.name, f]));
      // One runner call for all the files, the linter's reads between two of them (rehearsal/each-migration.ts).
      await eachMigration(client, { env, secrets, source, direction: 'up', names: files.map((f) => f.name) }, {
        before: async (name) => {
          befores.set(name, await readBefore());
          await beginObserved(client, name);
        },
        after: async (outcome, expected) => {
          const file = byName.get(outcome.migration || expected)!;
          const { tablesBefore, facts } = befores.get(file.name) ?? await readBefore();
          observations.push(await collectObserved(client, file.name));
          await guard.afterStep({ migration: file.name, phase: 'up', statements: outcome.statements }, client);
          const input = {
            migration: file.name,
            file: file.path,
            statements: outcome.statements,
            transactional: outcome.transactional,
            facts,
            serverMajor: setup.serverMajor,
            source: file.text,
            ruleLevels: options.ruleLevels,
          };
          const lint = runLinter ? (await runLinter.lint(input)).findings : await lintMigration({ ...input, existingTables: tablesBefore! });
          findings.push(...lint.map((f) => ({ ...f, path: file.path, line: lineOf(file.text, f.statement) })));
          if (!outcome.error) return;
          const where = outcome.error.sqlState ? ` (SQLSTATE ${outcome.error.sqlState})` : '';
          // Undefined table, column, schema, function or object: the copy lacks the schema these migrations start from.
          const missing = ['42P01', '42703', '3F000', '42883', '42704'].includes(outcome.error.sqlState ?? '');
          const hint = missing && !setup.seedFrom
            ? ' The copy started empty: pass --database-url of a database with the schema these migrations expect, or lint the whole migrations directory.'
            : '';
          findings.push({
            rule: 'rehearsal-failed', severity: 'error', migration: file.name, path: file.path, line: 1, acknowledged: null,
            statement: outcome.error.statement ?? '',
            message: `Migration ${file.name} failed when run on a throw-away copy: ${outcome.error.message}${where}.${hint}`,
          });
          const rest = files.slice(files.indexOf(file) + 1).map((f) => f.name);
          if (rest.length) notes.push(`Not linted, the rehearsal stopped at ${file.name}: ${rest.join(', ')}.`);
        },
      });
      // Observed effects need to know what the target holds: only with --database-url.
      if (setup.seedFrom) {
        const target = await connect(setup.seedFrom, 'sfm-lint');
        try {
          const observed = judgeObserved(observations, await readPreExisting(target, observations));
          const merged = mergeObserved(findings, observed).map((f): FileFinding => {
            if ('path' in f) return f as FileFinding;
            const source = f.migration === null ? undefined : byName.get(f.migration);
            return {
              ...f, migration: f.migration ?? '', statement: f.statement ?? '', severity: f.severity === 'error' ? 'error' : 'warning',
              path: source?.path ?? '', line: source ? lineOf(source.text, '') : 1,
            };
          });
          findings.splice(0, findings.length, ...merged);
          notes.push(`Observed effects: ${method}${observations[0]?.notes.length ? ` (${observations[0].notes.join('; ')})` : ''}.`);
        } finally {
          await target.end().catch(() => undefined);
        }
      } else {
        notes.push('Observed effects not judged: without --database-url the linter does not know which tables hold data on the target.');
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    return { findings, notes };
  } finally {
    await guard.beforeCopyDrop(url).catch(() => undefined);
    await withServer(setup.serverUrl, (c) => exec(c, dropDatabase(c.escapeIdentifier(name)))).catch(() => undefined);
    await guard.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

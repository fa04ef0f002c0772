import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { describeConnectionError, isConnectionError } from '../../../database/pg-errors.js';
import { LintInputError, lintFiles, type FileFinding } from '../../../services/preflight/lint-files/index.js';
import { RULE_CATALOG, type RuleLevel } from '../../../services/preflight/sql-analysis/rule-catalog.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../embedded-postgres.js';
import { freePort } from '../../net.js';
import type { Runtime } from '../context.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { toSarif } from '../lint-sarif.js';
import { choiceParser, isPlaceholder } from '../values.js';

// `sfm lint`: the preflight linter on migration files, with no service
// running. .sql files are read statically; JS/TS files are run on a
// throw-away database (a copy of --database-url's schema, or an embedded
// PostgreSQL) and the SQL they send is linted. The only command that touches
// a database, and it only reads the one it is given.

const FORMATS = ['text', 'json', 'sarif'] as const;
const LEVELS: readonly RuleLevel[] = ['error', 'warning', 'off'];

export const LINT_EXIT_HELP = `Exit codes (lint):
  0  no findings (warnings allowed unless --strict)
  1  findings: an error, or with --strict a warning
  2  usage error: bad option, no such file, not a migration file
  3  the database could not be reached
  5  an unexpected failure`;

class FindingsExit extends CliError {
  readonly exitCode = 1;
}

class DatabaseExit extends CliError {
  readonly exitCode = EXIT.api;
}

interface LintOptions {
  format: (typeof FORMATS)[number];
  databaseUrl?: string;
  rule: Record<string, RuleLevel>;
  strict?: boolean;
  migrationsTable?: string;
  migrationsSchema?: string;
}

function ruleSetting(rt: Runtime) {
  return (value: string, previous: Record<string, RuleLevel> = {}): Record<string, RuleLevel> => {
    if (rt.checking && isPlaceholder(value)) return previous;
    const [id, level] = value.split('=');
    if (!id || !RULE_CATALOG[id]) throw new InvalidArgumentError(`Unknown rule "${id ?? ''}" (the rules are listed in docs/rules/README.md).`);
    if (!level || !(LEVELS as readonly string[]).includes(level)) throw new InvalidArgumentError(`Expected <rule>=error|warning|off, got "${value}".`);
    return { ...previous, [id]: level as RuleLevel };
  };
}

function text(findings: FileFinding[], files: number, method: string, notes: string[]): string {
  const lines = findings.map((f) => {
    const ack = f.acknowledged ? ` (acknowledged: ${f.acknowledged.reason})` : '';
    return `${f.path}:${f.line}: ${f.severity} ${f.rule}: ${f.message}${ack}\n    ${f.statement.split('\n').join('\n    ')}`;
  });
  const errors = findings.filter((f) => f.severity === 'error').length;
  lines.push(...notes.map((n) => `note: ${n}`));
  lines.push(`${errors} error(s), ${findings.length - errors} warning(s) in ${files} migration file(s) (${method === 'static' ? 'SQL read statically' : 'linted from a rehearsal on a throw-away database'}).`);
  return `${lines.join('\n')}\n`;
}

export function lintCommand(rt: Runtime, parent: Command): void {
  parent
    .command('lint')
    .description('lint migration files without a running service (SQL statically; JS/TS files by running them on a throw-away database)')
    .argument('<paths...>', 'migration files or directories of them')
    .option('--format <format>', 'text (default), json, or sarif (SARIF 2.1.0 for GitHub code scanning)', choiceParser(rt, FORMATS), 'text')
    .option('--database-url <url>', 'a database standing for the target (only read): its catalog informs the rules, JS/TS migrations run on a copy of its schema; SFM_LINT_DATABASE_URL works too and keeps the password out of ps')
    .option('--rule <rule=level>', 'set a rule to error, warning or off (repeatable); style rules are off by default', ruleSetting(rt))
    .option('--strict', 'warnings count as findings too')
    .option('--migrations-table <name>', "the database's node-pg-migrate table, to skip migrations already applied (default pgmigrations)")
    .option('--migrations-schema <name>', 'its schema (default public)')
    .addHelpText('after', `\n${LINT_EXIT_HELP}`)
    .action(async (paths: string[], opts: LintOptions) => {
      if (rt.checking) return;
      const databaseUrl = opts.databaseUrl ?? rt.env.SFM_LINT_DATABASE_URL;
      if (databaseUrl) {
        rt.secrets.push(databaseUrl);
        try {
          const password = decodeURIComponent(new URL(databaseUrl).password);
          if (password) rt.secrets.push(password);
        } catch {
          throw new UsageError('--database-url is not a postgres:// URL');
        }
      }
      let embedded: { server: EmbeddedServer; dir: string } | undefined;
      const scratchServer = databaseUrl ? undefined : async () => {
        const dir = await mkdtemp(join(tmpdir(), 'sfm-lint-pg-'));
        embedded = { dir, server: await startEmbeddedPostgres({ dir, port: await freePort(), persistent: false }) };
        return embedded.server.url('postgres');
      };
      let result;
      try {
        result = await lintFiles({
          paths,
          databaseUrl,
          scratchServer,
          ruleLevels: opts.rule,
          migrationsTable: opts.migrationsTable,
          migrationsSchema: opts.migrationsSchema,
        });
      } catch (err) {
        if (err instanceof LintInputError) throw new UsageError(err.message);
        if (isConnectionError(err)) throw new DatabaseExit(`cannot reach the database: ${describeConnectionError(err)}`);
        throw err;
      } finally {
        if (embedded) {
          await embedded.server.stop().catch(() => undefined);
          await rm(embedded.dir, { recursive: true, force: true });
        }
      }
      const { findings, files, method, notes } = result;
      if (opts.format === 'json') {
        rt.io.out(`${JSON.stringify({ method, files: files.map((f) => f.path), findings, notes }, null, 2)}\n`);
      } else if (opts.format === 'sarif') {
        rt.io.out(`${JSON.stringify(toSarif({ findings, version: rt.version, cwd: process.cwd(), method, notes, ruleLevels: opts.rule }), null, 2)}\n`);
      } else {
        rt.io.out(text(findings, files.length, method, notes));
      }
      const failing = findings.filter((f) => f.severity === 'error' || opts.strict);
      if (failing.length) throw new FindingsExit(`${failing.length} finding(s)`);
    });
}

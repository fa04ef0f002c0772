// `scripts/migrate-preflight.sh`: the runbook's local preflight, runnable by
// hand against one environment's database, no running service needed.
//
//   connectivity -> pending migrations -> rehearsal (up, down, up on a
//   throw-away copy) with the smoke ETL -> lint -> target checks, among them
//   each extension a pending migration creates (pgcrypto for StarForge)
//
// The StarForge-specific steps (pgcrypto, the smoke ETL) say "not
// configured" (SKIP) on a project that does not use them.
//
// It runs the service's own preflight on a private, throw-away control
// database (a temporary database on PREFLIGHT_DATABASE_URL's server when set,
// else an embedded PostgreSQL), so it never touches a real service's runs.
// Exit codes: 0 clean, 1 findings, 2 usage or configuration error, 3 the
// database could not be reached, 4 the preflight itself broke.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { migrateControlDatabase } from '../../database/control-migrate.js';
import { createPool, exec, maybeOne, one, withDatabase } from '../../database/db.js';
import { describeConnectionError, scrubSecrets } from '../../database/pg-errors.js';
import { createDatabase, dropDatabase, extensionsInfo, serverFacts } from '../../database/sql/preflight.js';
import { createServices } from '../../services/index.js';
import { ServiceError } from '../../services/errors.js';
import { renderPreflightMarkdown } from '../../services/preflight/markdown.js';
import type { PreflightReport } from '../../services/preflight/report.js';
import { ConfigError, loadConfig, type AppConfig } from '../config/index.js';
import { startEmbeddedPostgres } from '../embedded-postgres.js';
import { freePort } from '../net.js';

export const EXIT = { ok: 0, findings: 1, usage: 2, unreachable: 3, internal: 4 } as const;

const USAGE = `usage: scripts/migrate-preflight.sh [--environment <name>] [--format text|md|json] [--output <file>] [--strict]

Runs the service's preflight for one environment of MIGRATION_CONFIG against
the database named by its databaseUrlEnv: connectivity, pending migrations, a
rehearsal (up, down, up) on a throw-away copy with the smoke ETL where the
target has one, lint, and the target checks (each extension a pending
migration creates, pgcrypto included). Nothing is applied to the target.

  --environment  environment name (default: staging)
  --format       text (default) prints a summary; md or json print the report
  --output       write the report (md or json) to this file instead of stdout
  --strict       warnings count as findings too

Exit codes: 0 clean, 1 findings, 2 usage or configuration error,
3 the database could not be reached, 4 the preflight itself broke.`;

class Exit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

const say = (line: string) => process.stderr.write(`${line}\n`);

interface Options {
  environment: string;
  format: 'text' | 'md' | 'json';
  output: string | undefined;
  strict: boolean;
}

function options(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        environment: { type: 'string', short: 'e', default: 'staging' },
        format: { type: 'string', default: 'text' },
        output: { type: 'string', short: 'o' },
        strict: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new Exit(EXIT.usage, `${(err as Error).message}\n\n${USAGE}`);
  }
  const v = parsed.values;
  if (v.help) throw new Exit(EXIT.ok, USAGE);
  if (!['text', 'md', 'json'].includes(v.format!)) throw new Exit(EXIT.usage, `--format must be text, md or json, got "${v.format}"`);
  if (v.output && v.format === 'text') throw new Exit(EXIT.usage, '--output needs --format md or json');
  return { environment: v.environment!, format: v.format as Options['format'], output: v.output, strict: v.strict! };
}

/** Connectivity, straight from the target; the URL is never printed. Also whether pgcrypto is installed (StarForge's one extension). */
async function probeTarget(url: string, envName: string): Promise<{ version: string; pgcryptoInstalled: boolean }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'starforge-preflight-script' });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new Exit(EXIT.unreachable, `FAIL connectivity: cannot reach ${envName}'s database: ${describeConnectionError(err)}`);
  }
  try {
    const facts = await one<{ version: string; role: string; connections: number; max_connections: number }>(client, serverFacts());
    say(`PASS connectivity: PostgreSQL ${facts.version} as ${facts.role} (${facts.connections}/${facts.max_connections} connections)`);
    const pgcrypto = await maybeOne<{ installed: boolean }>(client, extensionsInfo(['pgcrypto']));
    return { version: facts.version, pgcryptoInstalled: pgcrypto?.installed === true };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * pgcrypto only matters where a pending migration creates it (the preflight's
 * extension:pgcrypto check, which fails when it is unavailable or not
 * creatable) or where it is installed already; elsewhere it is not configured.
 */
function pgcryptoLine(report: PreflightReport, installed: boolean): string | null {
  if (report.checks.some((c) => c.id === 'extension:pgcrypto')) return null;
  return installed ? 'PASS pgcrypto: installed' : 'SKIP pgcrypto: not configured (not installed, and no pending migration creates it)';
}

/** A private control database for this one preflight, gone afterwards. */
async function privateControl(config: AppConfig): Promise<{ url: string; dispose(): Promise<void> }> {
  if (config.preflightDatabaseUrl) {
    const server = config.preflightDatabaseUrl;
    const name = `sf_preflight_script_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    try {
      await exec(admin, createDatabase(admin.escapeIdentifier(name)));
    } finally {
      await admin.end();
    }
    return {
      url: withDatabase(server, name),
      async dispose() {
        const c = new pg.Client({ connectionString: server });
        await c.connect();
        try {
          await exec(c, dropDatabase(c.escapeIdentifier(name)));
        } finally {
          await c.end();
        }
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'sf-preflight-script-'));
  const embedded = await startEmbeddedPostgres({ dir, port: await freePort(), persistent: false });
  await embedded.createDatabase('starforge_control');
  return {
    url: embedded.url('starforge_control'),
    async dispose() {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function summary(report: PreflightReport): string[] {
  const lines = [`Pending migrations (${report.migrations.length}):`, ...report.migrations.map((m) => `  - ${m.name}`)];
  for (const c of report.checks) lines.push(`${c.status.toUpperCase()} ${c.id}: ${c.detail}`);
  if (report.findings.length) lines.push('Findings:');
  for (const f of report.findings) {
    // An acknowledged finding is neither an error nor a warning any more: labelled as what it is, so the lines match the counts.
    const label = f.acknowledged ? 'ACKNOWLEDGED' : f.severity.toUpperCase();
    const ack = f.acknowledged ? ` (acknowledged${f.acknowledged.by ? ` by ${f.acknowledged.by}` : ''}: ${f.acknowledged.reason})` : '';
    lines.push(`  ${label} ${f.rule}${f.migration ? ` [${f.migration}]` : ''}: ${f.message}${ack}`);
  }
  return lines;
}

async function main(argv: string[]): Promise<number> {
  const opts = options(argv);
  let config: AppConfig;
  try {
    config = await loadConfig(process.env, process.cwd(), { notifications: false });
  } catch (err) {
    if (err instanceof ConfigError) throw new Exit(EXIT.usage, `Configuration error: ${err.message}`);
    throw err;
  }
  const env = config.environments[opts.environment];
  if (!env) throw new Exit(EXIT.usage, `Unknown environment "${opts.environment}" (configured: ${Object.keys(config.environments).join(', ')})`);
  const targetUrl = config.targetUrls[env.name];
  if (!targetUrl) throw new Exit(EXIT.usage, `${env.databaseUrlEnv} is not set: it names ${env.name}'s database`);

  const probe = await probeTarget(targetUrl, env.name);
  const control = await privateControl(config);
  const log = pino({ level: 'error', redact: ['*.password', '*.connectionString'] }, pino.destination(2));
  let pool: pg.Pool | undefined;
  let services: ReturnType<typeof createServices> | undefined;
  try {
    await migrateControlDatabase(control.url);
    config.databaseUrl = control.url;
    pool = createPool(control.url, { max: 4, applicationName: 'starforge-preflight-script' });
    services = createServices({ control: pool, config, log });
    let runId: string;
    try {
      const created = await services.runs.create(
        { environment: env.name, description: 'local preflight (scripts/migrate-preflight.sh)' },
        { subject: 'migrate-preflight', roles: ['requester'] },
      );
      runId = created.run.id;
    } catch (err) {
      if (err instanceof ServiceError && err.statusCode === 422) {
        say(`PASS pending migrations: none; ${env.name} is up to date.`);
        return EXIT.ok;
      }
      if (err instanceof ServiceError && err.statusCode === 503) throw new Exit(EXIT.unreachable, `FAIL connectivity: ${err.message}`);
      throw err;
    }
    await services.idle();
    const { report } = await services.preflight.report(runId);
    const run = await services.runs.get(runId);
    for (const line of summary(report)) say(line);
    const pgcrypto = pgcryptoLine(report, probe.pgcryptoInstalled);
    if (pgcrypto) say(pgcrypto);
    const body = opts.format === 'md' ? renderPreflightMarkdown(run, report) : opts.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : null;
    if (body !== null && opts.output) await writeFile(opts.output, body);
    else if (body !== null) process.stdout.write(body);
    const errors = report.findings.filter((f) => f.severity === 'error' && !f.acknowledged).length;
    const warnings = report.findings.filter((f) => f.severity === 'warning' && !f.acknowledged).length;
    const acknowledged = report.findings.filter((f) => f.acknowledged).length;
    const bad = errors + (opts.strict ? warnings : 0);
    say(`${bad ? 'FAILED' : 'PASSED'}: ${errors} error(s), ${warnings} warning(s)${acknowledged ? `, ${acknowledged} acknowledged` : ''}.`);
    return bad ? EXIT.findings : EXIT.ok;
  } finally {
    await services?.close();
    await pool?.end();
    await control.dispose();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof Exit) {
      (err.code === EXIT.ok ? process.stdout : process.stderr).write(`${err.message}\n`);
      process.exit(err.code);
    }
    const urls = Object.entries(process.env).filter(([k]) => k.endsWith('DATABASE_URL')).map(([, v]) => v);
    say(`preflight failed: ${scrubSecrets(err instanceof Error ? err.message : String(err), urls)}`);
    process.exit(EXIT.internal);
  },
);

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { PROJECT_ROOT } from '../../database/paths.js';
import { backfillCommands } from './commands/backfills.js';
import { environmentCommands } from './commands/environments.js';
import { etlCommands } from './commands/etl.js';
import { lintCommand } from './commands/lint.js';
import { runsCommand } from './commands/runs.js';
import type { Io, Runtime } from './context.js';
import { CliError, EXIT, EXIT_CODES_HELP } from './errors.js';

// `sfm`, the command line of the migration service. It only talks to the HTTP
// API (SFM_URL, SFM_TOKEN), except `sfm lint`, which lints migration files
// locally (and only reads the database it is given).

const ENVIRONMENT_HELP = `Environment:
  SFM_URL         base URL of the service, e.g. https://sfm.example.com (or --url)
  SFM_TOKEN       bearer token; or SFM_TOKEN_FILE, a file holding it
                  (never pass a token as an argument: it would show in ps)`;

const EXAMPLES_HELP = `Example:
  RUN_ID=$(sfm runs create --environment staging --description "add hero power" -q)
  sfm runs wait "$RUN_ID" --until preflight
  sfm runs approve "$RUN_ID" --role engineering
  sfm runs apply "$RUN_ID" --confirm staging
  sfm runs wait "$RUN_ID" --until done --timeout 45m`;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The whole command tree. Output goes through `rt.io`; parsing never exits the process. */
export function buildProgram(rt: Runtime): Command {
  const program = new Command('sfm');
  // Settings first: subcommands copy them when they are created.
  program
    .exitOverride()
    .configureOutput({ writeOut: (s) => rt.io.out(s), writeErr: (s) => rt.io.err(s), outputError: (s, write) => write(s) })
    .showHelpAfterError('(add --help for usage)')
    .description('StarForge Migration Service CLI: create, approve, apply and follow migration runs through the API')
    .version(rt.version, '-V, --version', 'print the version')
    .option('--json', 'machine output: the API response as JSON on stdout, nothing else')
    .option('--url <url>', 'base URL of the service (overrides SFM_URL)')
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n\n${EXAMPLES_HELP}`);
  runsCommand(rt, program);
  environmentCommands(rt, program);
  etlCommands(rt, program);
  backfillCommands(rt, program);
  lintCommand(rt, program);
  return program;
}

// Shorter strings are not redacted: replacing every "a" would garble the output and hide nothing.
const MIN_SECRET_LENGTH = 8;

function redactor(secrets: string[]) {
  return (text: string) => secrets.reduce((out, secret) => (secret.length >= MIN_SECRET_LENGTH ? out.split(secret).join('[redacted]') : out), text);
}

/** Parses and runs one command line; resolves to the exit code. */
export async function runCli(args: string[], opts: { env: NodeJS.ProcessEnv; stdout: (s: string) => void; stderr: (s: string) => void }): Promise<number> {
  // Known before any output: even a token pasted where an argument belongs is never echoed.
  const secrets: string[] = [opts.env.SFM_TOKEN?.trim() ?? ''].filter((s) => s.length >= MIN_SECRET_LENGTH);
  const redact = redactor(secrets);
  const io: Io = { out: (s) => opts.stdout(redact(s)), err: (s) => opts.stderr(redact(s)) };
  const rt: Runtime = { checking: false, env: opts.env, io, version: packageVersion(), secrets };
  try {
    await buildProgram(rt).parseAsync(args, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    // Commander has already printed its message (or the help).
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof CliError) {
      io.err(`error: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`error: unexpected failure in sfm: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.local;
  }
}

/**
 * Checks a command line against the real command definitions without running
 * it: no HTTP, no exit, no output, no environment needed. Values that are
 * wholly shell or Actions placeholders ($RUN_ID, ${{ inputs.env }}) pass.
 */
export function validateCommandLine(args: string[]): { ok: true } | { ok: false; error: string } {
  let errors = '';
  const io: Io = { out: () => undefined, err: (s) => { errors += s; } };
  const rt: Runtime = { checking: true, env: {}, io, version: '0.0.0', secrets: [] };
  try {
    buildProgram(rt).parse(args, { from: 'user' });
    return { ok: true };
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return { ok: true };
      const message = err.code === 'commander.help' ? 'incomplete command: a subcommand is required' : err.message;
      return { ok: false, error: message.replace(/^error: /, '').trim() || errors.trim() };
    }
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

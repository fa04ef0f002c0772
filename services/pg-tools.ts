import { execFile } from 'node:child_process';
import { scrubSecrets } from '../database/pg-errors.js';
import { dieWithParent, type OnSpawn } from './child-processes.js';

/**
 * libpq environment for a postgres URL, so pg_dump / pg_restore / psql get
 * the password through the environment rather than argv (visible in ps).
 */
export function libpqEnv(url: string): NodeJS.ProcessEnv {
  const parsed = new URL(url);
  const env: NodeJS.ProcessEnv = {
    PGHOST: decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, '')) || 'localhost',
    PGPORT: parsed.port || '5432',
    PGDATABASE: decodeURIComponent(parsed.pathname.slice(1)),
  };
  if (parsed.username) env.PGUSER = decodeURIComponent(parsed.username);
  if (parsed.password) env.PGPASSWORD = decodeURIComponent(parsed.password);
  const sslmode = parsed.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  const host = parsed.searchParams.get('host');
  if (host) env.PGHOST = host;
  return env;
}

export interface ToolResult {
  stdout: string;
  stderr: string;
}

export class ToolError extends Error {
  constructor(
    message: string,
    readonly code: string | number | null,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

export interface PgToolOptions {
  /** The tool's session name on the server (PGAPPNAME): how a reconciler finds what a dead run left there. */
  applicationName?: string;
  /** Told about the child once it runs (to record its pid and group). */
  onSpawn?: OnSpawn;
}

/**
 * Runs a PostgreSQL client tool against `url`; errors never carry the URL or
 * password. The tool runs in its own process group and, on Linux, dies with
 * this process (services/child-processes.ts).
 */
export function runPgTool(tool: string, args: string[], url: string | null, timeoutMs = 600_000, opts: PgToolOptions = {}): Promise<ToolResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(url ? libpqEnv(url) : {}), PGCONNECT_TIMEOUT: '10' };
  if (opts.applicationName) env.PGAPPNAME = opts.applicationName;
  const [file, argv] = dieWithParent(tool, args);
  return new Promise((resolve, reject) => {
    // detached: its own process group, which a reconciler can kill as a whole.
    const child = execFile(file, argv, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, detached: true } as Parameters<typeof execFile>[2], (err, stdout, stderr) => {
      if (err) {
        // Through setpriv a missing tool is exit 127 with setpriv's message rather than ENOENT.
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' || /failed to execute .*No such file or directory/.test(String(stderr));
        const code = missing ? 'ENOENT' : (err as NodeJS.ErrnoException).code ?? null;
        const why = code === 'ENOENT' ? `${tool} is not installed or not on PATH` : scrubSecrets(String(stderr || err.message).trim(), [url ?? undefined]).slice(0, 2000);
        reject(new ToolError(`${tool} failed: ${why}`, code));
        return;
      }
      resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
    opts.onSpawn?.({ child, command: tool, applicationName: opts.applicationName ?? null });
  });
}

/** The major version of a client tool (pg_dump --version → 15), or null when it is missing. */
export async function toolMajorVersion(tool: string): Promise<{ major: number; version: string } | null> {
  try {
    const { stdout } = await runPgTool(tool, ['--version'], null, 10_000);
    const match = /(\d+)(?:\.(\d+))?/.exec(stdout);
    return match ? { major: Number(match[1]), version: match[0] } : null;
  } catch {
    return null;
  }
}

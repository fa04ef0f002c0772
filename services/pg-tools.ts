import { execFile } from 'node:child_process';
import { scrubSecrets } from '../database/pg-errors.js';

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

/** Runs a PostgreSQL client tool against `url`; errors never carry the URL or password. */
export function runPgTool(tool: string, args: string[], url: string | null, timeoutMs = 600_000): Promise<ToolResult> {
  const env = { ...process.env, ...(url ? libpqEnv(url) : {}), PGCONNECT_TIMEOUT: '10' };
  return new Promise((resolve, reject) => {
    execFile(tool, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code ?? null;
        const why = code === 'ENOENT' ? `${tool} is not installed or not on PATH` : scrubSecrets(String(stderr || err.message).trim(), [url ?? undefined]).slice(0, 2000);
        reject(new ToolError(`${tool} failed: ${why}`, code));
        return;
      }
      resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
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

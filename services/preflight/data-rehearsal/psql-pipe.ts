import { spawn, type ChildProcess } from 'node:child_process';
import { scrubSecrets } from '../../../database/pg-errors.js';
import { dieWithParent } from '../../child-processes.js';
import { libpqEnv } from '../../pg-tools.js';
import { toolErrorLine } from './redact.js';

// Rows travel from the target to the copy as COPY text through two client
// processes (pg has no COPY streams of its own): a producer (psql COPY ... TO
// STDOUT, pg_dump or pg_restore to stdout) piped into one loader psql whose
// script runs as a single transaction. A failure anywhere rolls the whole
// load back, so the copy is then exactly what the schema seed left.

/** Reading the target: every session the producers open is read-only, whatever they send. */
const READ_ONLY = '-c default_transaction_read_only=on';
const APPLICATION_NAME = 'starforge-rehearsal-seed';

export class LoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadError';
  }
}

interface Spawned {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function start(tool: string, args: string[], url: string | null, readOnly: boolean): Spawned {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(url ? libpqEnv(url) : {}), PGCONNECT_TIMEOUT: '10', PGAPPNAME: APPLICATION_NAME, PGCLIENTENCODING: 'UTF8' };
  if (readOnly) env.PGOPTIONS = READ_ONLY;
  else delete env.PGOPTIONS;
  const [file, argv] = dieWithParent(tool, args);
  // detached: its own process group, killed as a whole when the load is abandoned.
  const child = spawn(file, argv, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (err.length < 64 * 1024) err += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('close', (code) => resolve(code));
  });
  return { child, stderr: () => err, exited };
}

function kill(s: Spawned): void {
  if (s.child.exitCode !== null || s.child.pid === undefined) return;
  try {
    process.kill(-s.child.pid, 'SIGKILL');
  } catch {
    s.child.kill('SIGKILL');
  }
}

/** One loader psql on the copy, fed a script (and the producers' rows) on stdin. */
export class Loader {
  private readonly psql: Spawned;
  private failed: Error | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly url: string, private readonly secrets: string[], timeoutMs: number) {
    this.psql = start('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-f', '-'], url, false);
    this.psql.child.stdout!.resume();
    this.psql.child.stdin!.on('error', () => undefined); // a psql that stopped on an error closes its stdin; finish() reports why
    this.timer = setTimeout(() => {
      this.failed = new LoadError(`loading the copy took longer than ${Math.round(timeoutMs / 60_000)} min`);
      kill(this.psql);
    }, timeoutMs);
    this.timer.unref();
  }

  private why(tool: string, s: Spawned, code: number | null): LoadError {
    if (code === 127) return new LoadError(`${tool} is not installed or not on PATH`);
    return new LoadError(`${tool} failed: ${scrubSecrets(toolErrorLine(s.stderr()), [this.url, ...this.secrets]) || `exit code ${code}`}`);
  }

  private dead(): boolean {
    return this.failed !== null || this.psql.child.exitCode !== null;
  }

  /** Writes script text, waiting when psql is behind. */
  async write(text: string): Promise<void> {
    if (this.dead()) return;
    const stdin = this.psql.child.stdin!;
    if (!stdin.write(text)) await new Promise<void>((resolve) => { stdin.once('drain', resolve); this.psql.exited.then(() => resolve()); });
  }

  /** Streams a producer's stdout into the script; throws when the producer fails. */
  async pipeFrom(tool: string, args: string[], url: string | null): Promise<void> {
    if (this.dead()) return;
    const producer = start(tool, args, url, true);
    producer.child.stdin!.end();
    producer.child.stdout!.pipe(this.psql.child.stdin!, { end: false });
    // A loader that stopped on an error reads no more: the producer must not wait on a full pipe.
    void this.psql.exited.then(() => kill(producer));
    const code = await producer.exited;
    producer.child.stdout!.unpipe(this.psql.child.stdin!);
    if (this.dead()) return;
    if (code !== 0) {
      this.failed = this.why(tool, producer, code);
      kill(this.psql);
    }
  }

  /** Ends the script; the load committed when this returns. */
  async finish(): Promise<void> {
    this.psql.child.stdin!.end();
    const code = await this.psql.exited;
    clearTimeout(this.timer);
    if (this.failed) throw this.failed;
    if (code !== 0) throw this.why('psql', this.psql, code);
  }

  abort(): void {
    clearTimeout(this.timer);
    kill(this.psql);
  }
}

/** Runs a client tool to completion and returns its stdout (small outputs: listings, one table's rows). */
export async function toolOutput(tool: string, args: string[], url: string | null, secrets: string[]): Promise<string> {
  const s = start(tool, args, url, true);
  s.child.stdin!.end();
  let out = '';
  s.child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString('utf8'); });
  const code = await s.exited;
  if (code === 127) throw new LoadError(`${tool} is not installed or not on PATH`);
  if (code !== 0) throw new LoadError(`${tool} failed: ${scrubSecrets(toolErrorLine(s.stderr()), [url ?? undefined, ...secrets]) || `exit code ${code}`}`);
  return out;
}

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { scrubSecrets } from '../../database/pg-errors.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { OnSpawn } from '../child-processes.js';
import { runPgTool } from '../pg-tools.js';
import { CommandError, runCommand } from '../shell.js';
import { formatBytes } from '../format-bytes.js';
import { readDatabaseSize, sampleFileGrowth, sampleReadPosition, type ToolSample } from './tool-progress.js';

export interface BackupRecord {
  id: string;
  method: 'pg_dump' | 'external';
  /** The dump file (pg_dump) or the provider's snapshot id (external). */
  location: string | null;
  sizeBytes: number | null;
  sha256: string | null;
  createdAt: string;
  verifiedAt: string | null;
  /** pg_dump: pg_database_size of the target when the dump began (null: not read). */
  databaseSizeBytes?: number | null;
}

/** A backup could not be made, verified or restored; the message carries no URL or password. */
export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

type Log = (line: string) => void;

// A dump or restore of a large database legitimately takes hours; these only
// stop a hung tool from holding the run forever.
const DUMP_TIMEOUT_MS = 6 * 60 * 60 * 1000;
const RESTORE_TIMEOUT_MS = 6 * 60 * 60 * 1000;
const LIST_TIMEOUT_MS = 10 * 60 * 1000;
const SNAPSHOT_TIMEOUT_MS = 6 * 60 * 60 * 1000;
const SNAPSHOT_VERIFY_TIMEOUT_MS = 60 * 60 * 1000;

const SNAPSHOT_ID = /^[A-Za-z0-9._:/-]{1,200}$/;

/**
 * Where pg_dump backups of this environment go; null for external snapshots.
 * Backups belong to the deployment, not to the application: the default and
 * any relative `backup.dir` live under DATA_DIR (the image's application
 * directory is read-only, DATA_DIR is its one writable volume).
 */
export function backupDirectory(env: EnvironmentConfig, dataDir: string): string | null {
  if (env.backup.method !== 'pg_dump') return null;
  const dir = env.backup.dir;
  if (dir === null) return join(dataDir, 'backups');
  return isAbsolute(dir) ? dir : resolve(dataDir, dir);
}

/** 2024-05-01T12:34:56.789Z → 20240501T123456Z */
function compactTimestamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function backupId(env: EnvironmentConfig, runId: string, at: Date): string {
  // The id becomes a file name: anything but a plain character in the run id
  // prefix (run ids are UUIDs, so normally nothing) must not reach the path.
  const run = runId.slice(0, 8).replace(/[^A-Za-z0-9_-]/g, '_');
  return `${env.name}-${run}-${compactTimestamp(at)}`;
}

const elapsed = (started: number) => `${Math.round(performance.now() - started)} ms`;

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The error's message, scrubbed once more: tool and command errors are already, but this is the last door. */
function reason(err: unknown, secrets: string[]): string {
  return scrubSecrets(err instanceof Error ? err.message : String(err), secrets);
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

// ---------------------------------------------------------------- pg_dump

/**
 * Creates the dump file empty with mode 0600 before pg_dump writes to it
 * (pg_dump truncates, keeping the mode), so the data is never readable by
 * others, whatever the umask. Refuses to overwrite an earlier backup.
 */
async function createPrivateFile(file: string): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  await handle.close();
  await chmod(file, 0o600);
}

async function createDump(opts: CreateBackupOptions, id: string, createdAt: string): Promise<BackupRecord> {
  const lockWaitMs = opts.environment.backup.method === 'pg_dump' ? opts.environment.backup.lockWaitTimeoutMs : 60_000;
  const dir = backupDirectory(opts.environment, opts.dataDir)!;
  const file = join(dir, `${id}.dump`);
  const secrets = [opts.targetUrl];
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await createPrivateFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new BackupError(`cannot create the backup file in ${dir} (${code})`);
  }
  // Recorded before pg_dump writes: a process dying mid-dump leaves a file a reconciler must remove.
  await opts.onFile?.(file);
  try {
    const databaseSizeBytes = await readDatabaseSize(opts.targetUrl, opts.applicationName, opts.log);
    await opts.onStarted?.({ databaseSizeBytes });
    const started = performance.now();
    opts.log(`pg_dump --format=custom --lock-wait-timeout=${lockWaitMs}ms of database "${databaseName(opts.targetUrl)}"${databaseSizeBytes === null ? '' : ` (${formatBytes(databaseSizeBytes)})`} to ${file}`);
    const growth = opts.onProgress ? sampleFileGrowth(file, (sample) => opts.onProgress!({ ...sample, databaseSizeBytes })) : null;
    try {
      await runPgTool('pg_dump', ['--format=custom', `--lock-wait-timeout=${lockWaitMs}ms`, `--file=${file}`], opts.targetUrl, DUMP_TIMEOUT_MS, { applicationName: opts.applicationName, onSpawn: opts.onSpawn });
    } catch (err) {
      // pg_dump gives up on a table another session holds exclusively: say so, not just "exit 1".
      const text = err instanceof Error ? err.message : String(err);
      const table = /LOCK TABLE (\S+) IN ACCESS SHARE MODE/.exec(text)?.[1];
      if (table && /due to (statement|lock) timeout/.test(text)) throw new BackupError(`backup with pg_dump failed: another session held a lock on ${table} for more than ${lockWaitMs} ms (backup.lockWaitTimeoutMs); find it in pg_stat_activity, then apply again`);
      throw err;
    } finally {
      await growth?.stop();
    }
    const { size } = await stat(file);
    opts.onProgress?.({ doneBytes: size, elapsedSeconds: (performance.now() - started) / 1000, databaseSizeBytes, finished: true });
    const sha256 = await sha256File(file);
    opts.log(`pg_dump finished in ${elapsed(started)}: ${formatBytes(size)} (${size} bytes), sha256 ${sha256}`);
    const record: BackupRecord = { id, method: 'pg_dump', location: file, sizeBytes: size, sha256, createdAt, verifiedAt: null, databaseSizeBytes };
    return await verifyBackup(record, { environment: opts.environment, log: opts.log, onSpawn: opts.onSpawn });
  } catch (err) {
    // A half-written or unverifiable dump must not be mistaken for a backup later.
    await rm(file, { force: true }).catch(() => undefined);
    if (err instanceof BackupError) throw err;
    throw new BackupError(`backup with pg_dump failed: ${reason(err, secrets)}`);
  }
}

/** Checks the file is the one that was written (size, sha256) before anything trusts it. */
async function checkDumpFile(record: BackupRecord, log: Log): Promise<string> {
  const file = record.location;
  if (!file || !record.sha256) throw new BackupError(`backup ${record.id} has no file or checksum recorded`);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new BackupError(`backup file ${file} is missing`);
  }
  if (record.sizeBytes !== null && size !== record.sizeBytes) {
    throw new BackupError(`backup file ${file} is ${size} bytes, expected ${record.sizeBytes}: it was changed or truncated`);
  }
  const sha256 = await sha256File(file);
  if (sha256 !== record.sha256) throw new BackupError(`backup file ${file} does not match its sha256: it was changed or corrupted`);
  log(`backup file ${file} matches its recorded sha256`);
  return file;
}

/**
 * pg_restore --list reads the archive's table of contents. Its header counts
 * every TOC entry, including ENCODING / STDSTRINGS / SEARCHPATH, which are not
 * listed as lines: an empty database's dump has no listed object yet is a
 * valid backup, so the header count is what must be at least one.
 */
async function listArchive(file: string, log: Log, onSpawn?: OnSpawn): Promise<void> {
  const started = performance.now();
  let listing: string;
  try {
    listing = (await runPgTool('pg_restore', ['--list', file], null, LIST_TIMEOUT_MS, { onSpawn })).stdout;
  } catch (err) {
    throw new BackupError(`pg_restore --list cannot read backup file ${file}: ${reason(err, [])}`);
  }
  const entries = Number(/^;\s*TOC Entries:\s*(\d+)/m.exec(listing)?.[1] ?? 0);
  const objects = listing.split('\n').filter((line) => line.trim() !== '' && !line.startsWith(';')).length;
  if (entries < 1) throw new BackupError(`pg_restore --list found no TOC entries in backup file ${file}`);
  log(`pg_restore --list read the archive in ${elapsed(started)}: ${entries} TOC entries, ${objects} restorable objects`);
}

/**
 * The tables ('schema.table') a pg_dump backup holds, from its table of
 * contents; null for external snapshots, whose contents the service cannot see.
 */
export async function backupTables(record: BackupRecord): Promise<string[] | null> {
  if (record.method !== 'pg_dump' || !record.location) return null;
  const listing = (await runPgTool('pg_restore', ['--list', record.location], null, LIST_TIMEOUT_MS)).stdout;
  const tables = new Set<string>();
  for (const line of listing.split('\n')) {
    const match = /^\d+; \d+ \d+ TABLE (\S+) (\S+) /.exec(line);
    if (match) tables.add(`${match[1]}.${match[2]}`);
  }
  return [...tables].sort();
}

async function verifyDump(record: BackupRecord, log: Log, onSpawn?: OnSpawn): Promise<void> {
  const file = await checkDumpFile(record, log);
  await listArchive(file, log, onSpawn);
}

async function restoreDump(record: BackupRecord, opts: RestoreBackupOptions): Promise<void> {
  await verifyDump(record, opts.log, opts.onSpawn);
  const file = record.location!;
  const database = databaseName(opts.targetUrl);
  const started = performance.now();
  opts.log(`pg_restore --clean --single-transaction of ${file} into database "${database}"`);
  let pid: number | undefined;
  const reading = opts.onProgress ? sampleReadPosition(() => pid, file, (sample) => opts.onProgress!({ ...sample, fileSizeBytes: record.sizeBytes })) : null;
  try {
    // One transaction with --exit-on-error: a restore that fails part-way
    // leaves the target exactly as it was.
    await runPgTool(
      'pg_restore',
      ['--clean', '--if-exists', '--no-owner', '--single-transaction', '--exit-on-error', `--dbname=${database}`, file],
      opts.targetUrl,
      RESTORE_TIMEOUT_MS,
      { applicationName: opts.applicationName, onSpawn: (spawned) => { pid = spawned.child.pid; opts.onSpawn?.(spawned); } },
    );
  } catch (err) {
    throw new BackupError(`pg_restore failed, the target was left unchanged: ${reason(err, [opts.targetUrl])}`);
  } finally {
    await reading?.stop();
  }
  opts.log(`pg_restore finished in ${elapsed(started)}`);
}

// ---------------------------------------------------------------- external

function lastLine(text: string): string | undefined {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '').at(-1);
}

interface SnapshotCommand {
  what: string;
  command: string;
  env: Record<string, string>;
  timeoutMs: number;
  secrets: string[];
  onSpawn?: OnSpawn;
}

async function runSnapshotCommand({ what, command, env, timeoutMs, secrets, onSpawn }: SnapshotCommand, environment: EnvironmentConfig, log: Log) {
  const started = performance.now();
  log(`running the ${what} command`);
  try {
    // The provider's tooling has its own credentials: it never gets the target's URL, not even inherited.
    const result = await runCommand(command, { env, timeoutMs, secrets, unsetEnv: [environment.databaseUrlEnv], onSpawn, label: `${what} command` });
    log(`${what} command finished in ${elapsed(started)}`);
    return result;
  } catch (err) {
    if (err instanceof CommandError) throw new BackupError(`${what} command failed: ${reason(err, secrets)}`);
    throw err;
  }
}

async function createSnapshot(opts: CreateBackupOptions, id: string, createdAt: string): Promise<BackupRecord> {
  const backup = opts.environment.backup;
  if (backup.method !== 'external') throw new Error('not an external backup');
  const env = { STARFORGE_ENVIRONMENT: opts.environment.name, STARFORGE_RUN_ID: opts.runId, STARFORGE_BACKUP_ID: id };
  const create = { what: 'backup create', command: backup.createCommand, env, timeoutMs: SNAPSHOT_TIMEOUT_MS, secrets: [opts.targetUrl], onSpawn: opts.onSpawn };
  await opts.onStarted?.({ databaseSizeBytes: null });
  const { stdout } = await runSnapshotCommand(create, opts.environment, opts.log);
  const snapshot = lastLine(stdout);
  if (!snapshot || !SNAPSHOT_ID.test(snapshot)) {
    throw new BackupError('backup create command did not print a snapshot id as its last line (1-200 characters of A-Z a-z 0-9 . _ : / -)');
  }
  opts.log(`snapshot ${snapshot} created`);
  const record: BackupRecord = { id, method: 'external', location: snapshot, sizeBytes: null, sha256: null, createdAt, verifiedAt: null };
  return verifyBackup(record, { environment: opts.environment, log: opts.log, onSpawn: opts.onSpawn });
}

function snapshotEnv(record: BackupRecord, environment: EnvironmentConfig): Record<string, string> {
  if (!record.location) throw new BackupError(`backup ${record.id} has no snapshot id recorded`);
  return { STARFORGE_ENVIRONMENT: environment.name, STARFORGE_BACKUP_ID: record.id, STARFORGE_SNAPSHOT_ID: record.location };
}

async function verifySnapshot(record: BackupRecord, environment: EnvironmentConfig, log: Log, onSpawn?: OnSpawn): Promise<void> {
  if (environment.backup.method !== 'external') throw new BackupError(`backup ${record.id} is a snapshot but ${environment.name} uses pg_dump backups`);
  const verify = { what: 'backup verify', command: environment.backup.verifyCommand, env: snapshotEnv(record, environment), timeoutMs: SNAPSHOT_VERIFY_TIMEOUT_MS, secrets: [], onSpawn };
  await runSnapshotCommand(verify, environment, log);
  log(`snapshot ${record.location} verified`);
}

async function restoreSnapshot(record: BackupRecord, opts: RestoreBackupOptions): Promise<void> {
  const backup = opts.environment.backup;
  if (backup.method !== 'external') throw new BackupError(`backup ${record.id} is a snapshot but ${opts.environment.name} uses pg_dump backups`);
  if (!backup.restoreCommand) {
    throw new BackupError(`${opts.environment.name} has no backup.restoreCommand: restore this snapshot (${record.location ?? 'unknown'}) with your provider's tooling`);
  }
  const restore = { what: 'backup restore', command: backup.restoreCommand, env: snapshotEnv(record, opts.environment), timeoutMs: SNAPSHOT_TIMEOUT_MS, secrets: [opts.targetUrl], onSpawn: opts.onSpawn };
  await runSnapshotCommand(restore, opts.environment, opts.log);
  opts.log(`snapshot ${record.location} restored`);
}

// ---------------------------------------------------------------- API

export interface CreateBackupOptions {
  environment: EnvironmentConfig;
  targetUrl: string;
  runId: string;
  /** DATA_DIR: the default and relative backup directories resolve under it. */
  dataDir: string;
  /** Not used for paths any more (backups resolve under DATA_DIR); accepted so existing callers need no change. */
  projectRoot?: string;
  log: Log;
  now?: Date;
  /** pg_dump's session name on the target (PGAPPNAME). */
  applicationName?: string;
  /** Told about each child process (pg_dump, pg_restore --list, snapshot commands). */
  onSpawn?: OnSpawn;
  /** Told the dump file's path before pg_dump starts writing it. */
  onFile?: (file: string) => Promise<void>;
  /** Told just before pg_dump (or the snapshot command) starts, with the target's size (pg_dump only). */
  onStarted?: (info: { databaseSizeBytes: number | null }) => Promise<void>;
  /** pg_dump only: the dump file's size every ~500 ms while pg_dump runs, then once `finished`. */
  onProgress?: (sample: DumpSample) => void;
}

export interface DumpSample extends ToolSample {
  databaseSizeBytes: number | null;
  /** Set once, when pg_dump has ended and the file is being verified: doneBytes is its size. */
  finished?: boolean;
}

export interface RestoreSample extends ToolSample {
  fileSizeBytes: number | null;
}

export interface VerifyBackupOptions {
  environment: EnvironmentConfig;
  log: Log;
  onSpawn?: OnSpawn;
}

export interface RestoreBackupOptions {
  environment: EnvironmentConfig;
  targetUrl: string;
  log: Log;
  /** pg_restore's session name on the target (PGAPPNAME). */
  applicationName?: string;
  onSpawn?: OnSpawn;
  /** pg_dump backups on Linux: how far pg_restore has read the file, every ~500 ms while it runs. */
  onProgress?: (sample: RestoreSample) => void;
}

/** Backs up the target and verifies the result: a record returned here is always verified. */
export async function createBackup(opts: CreateBackupOptions): Promise<BackupRecord> {
  const at = opts.now ?? new Date();
  const id = backupId(opts.environment, opts.runId, at);
  const createdAt = at.toISOString();
  return opts.environment.backup.method === 'pg_dump' ? createDump(opts, id, createdAt) : createSnapshot(opts, id, createdAt);
}

/** Checks a backup can still be restored; returns it with verifiedAt set, or throws BackupError. */
export async function verifyBackup(record: BackupRecord, opts: VerifyBackupOptions): Promise<BackupRecord> {
  if (record.method === 'pg_dump') await verifyDump(record, opts.log, opts.onSpawn);
  else await verifySnapshot(record, opts.environment, opts.log, opts.onSpawn);
  return { ...record, verifiedAt: new Date().toISOString() };
}

/** Puts the target back to the backup's state; a pg_dump file is checked against its sha256 first. */
export async function restoreBackup(record: BackupRecord, opts: RestoreBackupOptions): Promise<void> {
  if (record.method === 'pg_dump') await restoreDump(record, opts);
  else await restoreSnapshot(record, opts);
}

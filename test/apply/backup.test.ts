import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { withDatabase } from '../../database/db.js';
import { BackupError, backupDirectory, createBackup, restoreBackup, verifyBackup, type BackupRecord } from '../../services/apply/backup.js';
import { CommandError, runCommand } from '../../services/shell.js';
import { parseMigrationConfig, type EnvironmentConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { adminUrl, createTestDatabase, type TestDatabase } from '../support/db.js';

// One target database with the StarForge schema, backed up into a fresh temp
// directory per test; external backups run small shell scripts written here.
let db: TestDatabase;
let tmp: string;

function environment(backup: unknown): EnvironmentConfig {
  return parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', backup } } }, PROJECT_ROOT).staging!;
}

async function newDir(label: string): Promise<string> {
  return mkdtemp(join(tmp, `${label}-`));
}

function lines(): { log: (line: string) => void; lines: string[] } {
  const out: string[] = [];
  return { log: (line) => out.push(line), lines: out };
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

async function snapshotRows(target = db) {
  const profiles = await target.query('SELECT user_id, display_name, level, power::text FROM user_profile_summary ORDER BY user_id');
  const troops = await target.query('SELECT user_id, troop_type, tier, count::text FROM user_troops ORDER BY 1, 2, 3');
  return { profiles: profiles.rows, troops: troops.rows };
}

async function dumpBackup(label: string, target = db): Promise<{ record: BackupRecord; dir: string; log: string[] }> {
  const dir = await newDir(label);
  const { log, lines: logged } = lines();
  const record = await createBackup({
    environment: environment({ method: 'pg_dump', dir }), targetUrl: target.url, runId: randomUUID(), dataDir: tmp, projectRoot: PROJECT_ROOT, log,
  });
  return { record, dir, log: logged };
}

async function rejectsWithBackupError(promise: Promise<unknown>, pattern: RegExp): Promise<BackupError> {
  let caught: unknown;
  await promise.then(() => undefined, (err: unknown) => { caught = err; });
  assert.ok(caught instanceof BackupError, `expected a BackupError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sf-backup-test-'));
  db = await createTestDatabase('backup');
  await runner({
    databaseUrl: db.url, dir: resolve(PROJECT_ROOT, 'database/migrations'), migrationsTable: 'pgmigrations',
    direction: 'up', count: Infinity, singleTransaction: false, log: () => undefined,
  });
  await db.query(`INSERT INTO user_profile_summary (user_id, display_name, level, power) SELECT 'u' || g, 'Player ' || g, g, g * 1000 FROM generate_series(1, 50) g`);
  await db.query(`INSERT INTO user_troops (user_id, troop_type, tier, count) SELECT 'u' || g, t, 1, g * 10 FROM generate_series(1, 50) g, unnest(ARRAY['archer', 'knight']) t`);
});

after(async () => {
  await db.drop();
  await rm(tmp, { recursive: true, force: true });
});

test('a session holding an exclusive lock fails the backup after backup.lockWaitTimeoutMs, naming the table, with no file left', async () => {
  const dir = await newDir('locked');
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE user_troops IN ACCESS EXCLUSIVE MODE');
    const started = Date.now();
    const { log } = lines();
    await rejectsWithBackupError(
      createBackup({ environment: environment({ method: 'pg_dump', dir, lockWaitTimeoutMs: 300 }), targetUrl: db.url, runId: randomUUID(), dataDir: tmp, projectRoot: PROJECT_ROOT, log }),
      /another session held a lock on public\.user_troops for more than 300 ms \(backup\.lockWaitTimeoutMs\)/,
    );
    assert.ok(Date.now() - started < 10_000, 'the backup gave up instead of queueing behind the lock');
    assert.deepEqual(await readdir(dir), [], 'no partial dump is left');
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
});

describe('backupDirectory', () => {
  test('absolute as is, relative and default under DATA_DIR (never the application directory), none for snapshots', () => {
    assert.equal(backupDirectory(environment({ method: 'pg_dump', dir: '/srv/backups' }), '/data'), '/srv/backups');
    assert.equal(backupDirectory(environment({ method: 'pg_dump', dir: 'var/backups' }), '/data'), '/data/var/backups');
    assert.equal(backupDirectory(environment({ method: 'pg_dump', dir: '../elsewhere' }), '/data'), '/elsewhere');
    assert.equal(backupDirectory(environment({ method: 'pg_dump' }), '/data'), '/data/backups');
    assert.equal(backupDirectory(environment({ method: 'external', createCommand: 'x', verifyCommand: 'y' }), '/data'), null);
  });
});

describe('pg_dump backups', () => {
  test('creates a private, checksummed, verified dump named <env>-<run>-<timestamp>', async () => {
    const dir = join(await newDir('create'), 'nested');
    const { log, lines: logged } = lines();
    const runId = '0f1e2d3c-aaaa-bbbb-cccc-000000000000';
    const record = await createBackup({
      environment: environment({ method: 'pg_dump', dir }), targetUrl: db.url, runId, dataDir: tmp, projectRoot: PROJECT_ROOT, log,
      now: new Date('2024-05-01T12:34:56.789Z'),
    });
    assert.equal(record.id, 'staging-0f1e2d3c-20240501T123456Z');
    assert.equal(record.method, 'pg_dump');
    assert.equal(record.location, join(dir, `${record.id}.dump`));
    assert.equal(record.createdAt, '2024-05-01T12:34:56.789Z');
    assert.ok(record.verifiedAt, 'a created backup is verified');
    const file = await stat(record.location!);
    assert.ok(record.sizeBytes! > 0);
    assert.equal(file.size, record.sizeBytes);
    assert.equal(record.sha256, await sha256(record.location!));
    assert.equal(file.mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.ok(logged.some((l) => /pg_dump finished/.test(l)), logged.join('\n'));
    assert.ok(logged.some((l) => /pg_restore --list read the archive/.test(l)), logged.join('\n'));
    assert.ok(logged.every((l) => !l.includes('postgres://')), 'log lines carry no URL');
  });

  test('an empty database is a valid backup too', async () => {
    const empty = await createTestDatabase('backup_empty');
    try {
      const { record } = await dumpBackup('empty', empty);
      assert.ok(record.verifiedAt);
    } finally {
      await empty.drop();
    }
  });

  test('restore round trip: dropped table and deleted rows come back', async () => {
    const before = await snapshotRows();
    const { record } = await dumpBackup('roundtrip');
    await db.query('DROP TABLE user_troops');
    await db.query(`DELETE FROM user_profile_summary WHERE level > 10`);
    await db.query(`UPDATE user_profile_summary SET display_name = 'changed'`);
    const { log, lines: logged } = lines();
    await restoreBackup(record, { environment: environment({ method: 'pg_dump' }), targetUrl: db.url, log });
    assert.deepEqual(await snapshotRows(), before);
    assert.ok(logged.some((l) => /pg_restore finished/.test(l)), logged.join('\n'));
  });

  test('a truncated file fails verify and restore, and the target is untouched', async () => {
    const { record } = await dumpBackup('truncated');
    await db.query('DELETE FROM user_troops WHERE tier = 1 AND troop_type = $1', ['knight']);
    const state = await snapshotRows();
    await truncate(record.location!, Math.floor(record.sizeBytes! / 2));
    const env = environment({ method: 'pg_dump' });
    await rejectsWithBackupError(verifyBackup(record, { environment: env, log: () => undefined }), /changed or truncated/);
    await rejectsWithBackupError(restoreBackup(record, { environment: env, targetUrl: db.url, log: () => undefined }), /changed or truncated/);
    assert.deepEqual(await snapshotRows(), state);
    // Restore the knights for the later tests.
    await db.query(`INSERT INTO user_troops (user_id, troop_type, tier, count) SELECT 'u' || g, 'knight', 1, g * 10 FROM generate_series(1, 50) g`);
  });

  test('a corrupted file (same size) fails its sha256 check', async () => {
    const { record } = await dumpBackup('corrupt');
    const bytes = await readFile(record.location!);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10]! + 1) % 256;
    await writeFile(record.location!, bytes);
    await rejectsWithBackupError(verifyBackup(record, { environment: environment({ method: 'pg_dump' }), log: () => undefined }), /sha256/);
  });

  test('a dump broken when it was written (checksum matches) fails inside one transaction: the target is untouched', async () => {
    const { record } = await dumpBackup('broken-data');
    await truncate(record.location!, record.sizeBytes! - 200);
    const broken = { ...record, sizeBytes: record.sizeBytes! - 200, sha256: await sha256(record.location!) };
    await db.query(`UPDATE user_profile_summary SET guild = 'after-backup'`);
    await db.query('CREATE TABLE created_after_backup (id int)');
    const state = await snapshotRows();
    await rejectsWithBackupError(restoreBackup(broken, { environment: environment({ method: 'pg_dump' }), targetUrl: db.url, log: () => undefined }), /pg_restore failed, the target was left unchanged/);
    assert.deepEqual(await snapshotRows(), state);
    assert.equal((await db.query(`SELECT count(*)::int AS n FROM user_profile_summary WHERE guild = 'after-backup'`)).rows[0].n, 50);
    assert.equal((await db.query(`SELECT to_regclass('public.created_after_backup') IS NOT NULL AS e`)).rows[0].e, true);
    await db.query('DROP TABLE created_after_backup');
  });

  test('a missing file fails verify', async () => {
    const { record } = await dumpBackup('missing');
    await rm(record.location!);
    await rejectsWithBackupError(verifyBackup(record, { environment: environment({ method: 'pg_dump' }), log: () => undefined }), /missing/);
  });

  test('a failing pg_dump is a BackupError without the password, and leaves no file behind', async () => {
    const dir = await newDir('failing');
    const password = 'Sup3r-s3cret-pw';
    const url = new URL(withDatabase(adminUrl(), `sf_no_such_db_${randomUUID().slice(0, 8)}`));
    url.password = password;
    const { log, lines: logged } = lines();
    const err = await rejectsWithBackupError(
      createBackup({ environment: environment({ method: 'pg_dump', dir }), targetUrl: url.toString(), runId: randomUUID(), dataDir: tmp, projectRoot: PROJECT_ROOT, log }),
      /pg_dump failed/,
    );
    // Trust auth (the machine's server) reaches the missing database; scram (embedded) stops at the password.
    assert.match(err.message, /does not exist|password authentication failed/);
    assert.ok(!err.message.includes(password), err.message);
    assert.ok(!err.message.includes('postgres://'), err.message);
    assert.ok(logged.every((l) => !l.includes(password)));
    assert.deepEqual(await readdir(dir), []);
  });
});

describe('external snapshots', () => {
  let scripts: string;
  let received: string;

  const script = async (name: string, body: string) => {
    await writeFile(join(scripts, name), `#!/bin/sh\n${body}\n`, { mode: 0o700 });
    return join(scripts, name);
  };

  before(async () => {
    // As in production: the target's URL is in the service's environment; the commands must not inherit it.
    process.env.STAGING_DATABASE_URL = db.url;
    scripts = await newDir('scripts');
    received = join(scripts, 'received.log');
    await script('create.sh', [
      `echo "create env=$STARFORGE_ENVIRONMENT run=$STARFORGE_RUN_ID backup=$STARFORGE_BACKUP_ID url=\${STAGING_DATABASE_URL:-none}" >> ${received}`,
      'echo "snapshotting the volume..."',
      'echo "progress: 100%" >&2',
      'echo "snap-123"',
      'echo ""',
    ].join('\n'));
    await script('verify.sh', `echo "verify $STARFORGE_SNAPSHOT_ID" >> ${received}\n[ "$STARFORGE_SNAPSHOT_ID" = "snap-123" ] || { echo "unknown snapshot $STARFORGE_SNAPSHOT_ID" >&2; exit 4; }`);
    await script('restore.sh', `echo "restore $STARFORGE_SNAPSHOT_ID" >> ${received}`);
    await script('bad-id.sh', 'echo "snapshot created: snap 123 (pending)"');
  });

  after(() => {
    delete process.env.STAGING_DATABASE_URL;
  });

  const external = (extra: Record<string, string> = {}) =>
    environment({ method: 'external', createCommand: `${scripts}/create.sh`, verifyCommand: `${scripts}/verify.sh`, ...extra });

  test('create runs the command with ids in its env, takes the last line as the snapshot id, and verifies it', async () => {
    await rm(received, { force: true });
    const runId = randomUUID();
    const { log, lines: logged } = lines();
    const record = await createBackup({
      environment: external(), targetUrl: db.url, runId, dataDir: tmp, projectRoot: PROJECT_ROOT, log, now: new Date('2024-01-02T03:04:05Z'),
    });
    assert.deepEqual({ ...record, verifiedAt: null }, {
      id: `staging-${runId.slice(0, 8)}-20240102T030405Z`, method: 'external', location: 'snap-123', sizeBytes: null, sha256: null,
      createdAt: '2024-01-02T03:04:05.000Z', verifiedAt: null,
    });
    assert.ok(record.verifiedAt);
    assert.deepEqual((await readFile(received, 'utf8')).trim().split('\n'), [
      `create env=staging run=${runId} backup=${record.id} url=none`,
      'verify snap-123',
    ]);
    assert.ok(logged.some((l) => /snapshot snap-123 verified/.test(l)), logged.join('\n'));
  });

  test('verify fails when the verify command does', async () => {
    const record: BackupRecord = { id: 'x', method: 'external', location: 'snap-999', sizeBytes: null, sha256: null, createdAt: new Date().toISOString(), verifiedAt: null };
    const err = await rejectsWithBackupError(verifyBackup(record, { environment: external(), log: () => undefined }), /backup verify command failed/);
    assert.match(err.message, /exited with code 4/);
    assert.match(err.message, /unknown snapshot snap-999/);
  });

  test('a create command printing something that is not an id is refused', async () => {
    const env = environment({ method: 'external', createCommand: `${scripts}/bad-id.sh`, verifyCommand: `${scripts}/verify.sh` });
    await rejectsWithBackupError(
      createBackup({ environment: env, targetUrl: db.url, runId: randomUUID(), dataDir: tmp, projectRoot: PROJECT_ROOT, log: () => undefined }),
      /did not print a snapshot id/,
    );
    const silent = environment({ method: 'external', createCommand: 'true', verifyCommand: `${scripts}/verify.sh` });
    await rejectsWithBackupError(
      createBackup({ environment: silent, targetUrl: db.url, runId: randomUUID(), dataDir: tmp, projectRoot: PROJECT_ROOT, log: () => undefined }),
      /did not print a snapshot id/,
    );
  });

  test('a failing create command is a BackupError', async () => {
    const env = environment({ method: 'external', createCommand: 'echo "quota exceeded" >&2; exit 3', verifyCommand: `${scripts}/verify.sh` });
    await rejectsWithBackupError(
      createBackup({ environment: env, targetUrl: db.url, runId: randomUUID(), dataDir: tmp, projectRoot: PROJECT_ROOT, log: () => undefined }),
      /backup create command failed: command exited with code 3: quota exceeded/,
    );
  });

  test('restore runs restoreCommand with the snapshot id; without one it says to use the provider', async () => {
    await rm(received, { force: true });
    const record: BackupRecord = { id: 'x', method: 'external', location: 'snap-123', sizeBytes: null, sha256: null, createdAt: new Date().toISOString(), verifiedAt: null };
    await restoreBackup(record, { environment: external({ restoreCommand: `${scripts}/restore.sh` }), targetUrl: db.url, log: () => undefined });
    assert.equal((await readFile(received, 'utf8')).trim(), 'restore snap-123');
    await rejectsWithBackupError(
      restoreBackup(record, { environment: external(), targetUrl: db.url, log: () => undefined }),
      /restore this snapshot \(snap-123\) with your provider's tooling/,
    );
  });
});

describe('runCommand', () => {
  test('passes env, returns output', async () => {
    const { stdout, stderr } = await runCommand('echo "$A-$B"; echo warn >&2', { env: { A: 'one', B: 'two' }, timeoutMs: 5000 });
    assert.equal(stdout, 'one-two\n');
    assert.equal(stderr, 'warn\n');
  });

  test('a non-zero exit says the code and the scrubbed tail of stderr', async () => {
    const secret = 'postgres://admin:hunter2@db.internal:5432/prod';
    await assert.rejects(
      runCommand(`echo "connecting to $URL" >&2; exit 7`, { env: { URL: secret }, timeoutMs: 5000, secrets: [secret] }),
      (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.exitCode, 7);
        assert.match(err.message, /exited with code 7: connecting to \[redacted\]/);
        assert.ok(!err.message.includes('hunter2'));
        return true;
      },
    );
  });

  test('a command running too long is killed, with its children', async () => {
    const started = Date.now();
    await assert.rejects(runCommand('sleep 30 | cat', { timeoutMs: 300 }), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.timedOut, true);
      assert.match(err.message, /timed out after 300 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'returned promptly after the timeout');
  });
});

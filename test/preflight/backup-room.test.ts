// Preflight's backup-space check: the pg_dump backup directory (under
// DATA_DIR unless absolute) must be writable by the service user and have
// room for the estimated dump, or the preflight fails before anyone approves
// a run whose apply would stop at its backup.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { migrateControlDatabase } from '../../database/control-migrate.js';
import { checkBackupRoom } from '../../services/preflight/backup-room.js';
import { parseMigrationConfig, type EnvironmentConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { asNobody } from '../support/users.js';
import { bearer, startTestApp } from '../support/app.js';
import { migrationSource, writeMigrations } from '../support/migrations.js';

let control: TestDatabase;
let target: TestDatabase;
let pool: pg.Pool;
let client: pg.Client;
let tmp: string;

const environment = (backup: unknown = undefined): EnvironmentConfig =>
  parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', backup } } }, PROJECT_ROOT).staging!;

before(async () => {
  control = await createTestDatabase('backup_room_ctl');
  target = await createTestDatabase('backup_room_tgt');
  await migrateControlDatabase(control.url);
  pool = new pg.Pool({ connectionString: control.url, max: 2 });
  client = new pg.Client({ connectionString: target.url });
  await client.connect();
  await client.query('CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 4) AS payload FROM generate_series(1, 2000) g');
  tmp = await mkdtemp(join(tmpdir(), 'sf-backup-room-'));
});
after(async () => {
  await client?.end();
  await pool?.end();
  await Promise.all([control?.drop(), target?.drop()]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the backup-space preflight check', () => {
  test('passes for a writable DATA_DIR (backups/ not created yet), naming the directory, the free space and the estimate', async () => {
    const dataDir = join(tmp, 'data-ok');
    await mkdir(dataDir);
    const room = await checkBackupRoom(client, pool, environment(), dataDir);
    assert.ok(room);
    assert.equal(room.check.id, 'backup-space');
    assert.equal(room.check.status, 'pass', room.check.detail);
    assert.equal(room.finding, null);
    assert.ok(room.check.detail.includes(join(dataDir, 'backups')), room.check.detail);
    assert.match(room.check.detail, /free on the filesystem/);
    assert.match(room.check.detail, /table data/, 'estimated from the target when no earlier dump is known');
  });

  test('a relative backup.dir is checked under DATA_DIR, not under the application directory', async () => {
    const dataDir = join(tmp, 'data-relative');
    const room = await checkBackupRoom(client, pool, environment({ method: 'pg_dump', dir: 'dumps/staging' }), dataDir);
    assert.ok(room!.check.detail.includes(join(dataDir, 'dumps/staging')), room!.check.detail);
    assert.equal(room!.check.detail.includes(PROJECT_ROOT + '/dumps'), false);
  });

  test('fails when the directory cannot be created (a file is in the way), with an error finding naming it', async () => {
    const file = join(tmp, 'not-a-dir');
    await writeFile(file, 'x');
    const room = await checkBackupRoom(client, pool, environment({ method: 'pg_dump', dir: join(file, 'backups') }), tmp);
    assert.equal(room!.check.status, 'fail');
    assert.equal(room!.finding?.rule, 'backup-dir-not-writable');
    assert.equal(room!.finding?.severity, 'error');
    assert.ok(room!.finding!.message.includes(`${file} is not a directory`), room!.finding!.message);
  });

  test('fails when the estimated dump (the last verified dump plus growth) does not fit on the disk', async () => {
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
       VALUES ('staging', 'succeeded', 'earlier run', 'alice', 'd', '{any}') RETURNING id`,
    );
    // An earlier dump of 4 PiB: no test machine has that much room.
    await pool.query(
      `INSERT INTO backups (id, run_id, environment, method, location, size_bytes, sha256, verified_at)
       VALUES ('staging-earlier', $1, 'staging', 'pg_dump', '/nowhere', $2, 'x', now())`,
      [rows[0]!.id, String(4 * 1024 ** 5)],
    );
    try {
      const room = await checkBackupRoom(client, pool, environment(), join(tmp, 'data-full'));
      assert.equal(room!.check.status, 'fail');
      assert.equal(room!.finding?.rule, 'backup-space-insufficient');
      assert.match(room!.finding!.message, /last verified dump of staging \(4\.0 PiB\) plus 25%/);
    } finally {
      await pool.query(`DELETE FROM backups WHERE id = 'staging-earlier'`);
    }
  });

  test('external snapshots have no backup directory to check', async () => {
    assert.equal(await checkBackupRoom(client, pool, environment({ method: 'external', createCommand: 'x', verifyCommand: 'y' }), tmp), null);
  });

  const nobody = asNobody();
  test('fails for a directory the service user cannot write (run as nobody)', { skip: 'skip' in nobody ? nobody.skip : false }, async () => {
    if ('skip' in nobody) return;
    // Like the image: the application directory belongs to root, read-only; only DATA_DIR belongs to the service user.
    const root = await mkdtemp(join(tmpdir(), 'sf-backup-room-ro-'));
    try {
      await chmod(root, 0o755);
      const appOwned = join(root, 'app', 'backups');
      await mkdir(appOwned, { recursive: true });
      await chmod(join(root, 'app'), 0o555);
      const dataDir = join(root, 'data');
      await mkdir(dataDir);
      await chown(dataDir, nobody.uid, nobody.gid);
      const child = join(PROJECT_ROOT, 'dist/test/support/backup-dir-child.js');
      const run = (dir: string) => {
        const out = spawnSync(nobody.prefix[0]!, [...nobody.prefix.slice(1), process.execPath, child, dir], { encoding: 'utf8' });
        assert.equal(out.status, 0, out.stderr);
        return JSON.parse(out.stdout) as { ok: boolean; reason?: string };
      };
      const denied = run(join(root, 'app', 'backups'));
      assert.equal(denied.ok, false);
      assert.match(denied.reason!, /is not writable by this process \(EACCES: permission denied\)/);
      const missing = run(join(root, 'app', 'more', 'backups'));
      assert.match(missing.reason!, new RegExp(`cannot be created: ${join(root, 'app')} is not writable`));
      assert.equal(run(join(dataDir, 'backups')).ok, true, 'DATA_DIR is');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

// Tests run as root, for whom access(W_OK) says yes on a read-only mount's
// mode bits, on /proc and on /sys: only a real write is refused there.
describe('backup directories that refuse writes even to root', () => {
  test('a directory under /proc (access() says writable, creating a file fails): fails preflight naming the directory', async () => {
    const room = await checkBackupRoom(client, pool, environment({ method: 'pg_dump', dir: '/proc/starforge-backups' }), tmp);
    assert.equal(room!.check.status, 'fail', room!.check.detail);
    assert.equal(room!.finding?.rule, 'backup-dir-not-writable');
    assert.equal(room!.finding?.severity, 'error');
    assert.match(room!.finding!.message, /^The backup directory \/proc\/starforge-backups cannot be created: \/proc is not writable by this process \(ENOENT/);
  });

  const mountPoint = join(tmpdir(), `sf-backup-ro-${process.pid}`);
  let mounted = false;
  before(async () => {
    await mkdir(mountPoint, { recursive: true });
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mountPoint]).status === 0;
  });
  after(async () => {
    if (mounted) spawnSync('umount', [mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  });

  test('a read-only mount (EROFS): fails preflight, and a run on it fails its preflight instead of its apply', async (t) => {
    if (!mounted) return t.skip('cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)');
    const room = await checkBackupRoom(client, pool, environment({ method: 'pg_dump', dir: join(mountPoint, 'backups') }), tmp);
    assert.equal(room!.check.status, 'fail', room!.check.detail);
    assert.equal(room!.finding?.rule, 'backup-dir-not-writable');
    assert.match(room!.finding!.message, /is not writable by this process \(EROFS: read-only file system\)/);

    const migrations = await mkdtemp(join(tmpdir(), 'sf-backup-ro-migrations-'));
    await writeMigrations(migrations, { '1000_t': migrationSource('CREATE TABLE t (id int)', 'DROP TABLE t') });
    const app = await startTestApp({
      label: 'backup_ro',
      migrationConfigSource: `export default { environments: {
        staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(migrations)}, approvals: { required: ['any'] },
          backup: { method: 'pg_dump', dir: ${JSON.stringify(mountPoint)} } },
        production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(migrations)} } } };`,
    });
    try {
      const created = await app.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'read-only backups' });
      assert.equal(created.status, 201, created.text);
      await app.settle();
      const run = (await app.http().get(`/v1/runs/${created.body.id}`).set('authorization', bearer('vic'))).body;
      assert.equal(run.status, 'preflight_failed');
      const report = (await app.http().get(`/v1/runs/${run.id}/preflight`).set('authorization', bearer('vic'))).body.report;
      const finding = report.findings.find((f: { rule: string }) => f.rule === 'backup-dir-not-writable');
      assert.ok(finding, JSON.stringify(report.findings));
      assert.match(finding.message, /EROFS: read-only file system/);
    } finally {
      await app.close();
      await rm(migrations, { recursive: true, force: true });
    }
  });
});

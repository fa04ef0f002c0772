import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { sha256Hex } from '../../src/config/auth-tokens.js';
import { parseMigrationConfig } from '../../services/environments/model.js';

const BASE = { DATABASE_URL: 'postgres://u:p@localhost:5432/control' };

async function configError(env: Record<string, string>): Promise<ConfigError> {
  try {
    await loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the config to be refused');
}

describe('service settings from environment variables', () => {
  test('defaults', async () => {
    const config = await loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.databaseUrl, undefined, 'no DATABASE_URL means embedded');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.scheduler, true);
    assert.equal(config.etlWorker, undefined, 'ETL worker default is decided by the server (on for the embedded demo)');
    assert.deepEqual(config.authTokens, []);
    assert.deepEqual(Object.keys(config.environments), ['staging', 'production']);
    assert.match(config.dataDir, /\.data$/);
  });

  test('valid values are parsed and typed', async () => {
    const config = await loadConfig({ ...BASE, PORT: '8080', HOST: '0.0.0.0', LOG_LEVEL: 'DEBUG', SCHEDULER: 'off', ETL_WORKER: '1', STAGING_DATABASE_URL: 'postgresql://s@h/staging' });
    assert.equal(config.port, 8080);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.scheduler, false);
    assert.equal(config.etlWorker, true);
    assert.equal(config.databaseUrl, BASE.DATABASE_URL);
    assert.equal(config.targetUrls.staging, 'postgresql://s@h/staging');
    assert.equal(config.targetUrls.production, undefined);
  });

  const bad: Array<[string, Record<string, string>]> = [
    ['PORT', { PORT: 'eighty' }],
    ['PORT', { PORT: '70000' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x@y/z' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['DATABASE_URL', { DATABASE_URL: 'postgres://host:5432' }],
    ['PREFLIGHT_DATABASE_URL', { PREFLIGHT_DATABASE_URL: 'http://x/y' }],
    ['STAGING_DATABASE_URL', { STAGING_DATABASE_URL: 'nope' }],
    ['SCHEDULER', { SCHEDULER: 'maybe' }],
    ['ETL_WORKER', { ETL_WORKER: 'yes please' }],
    ['AUTH_TOKENS', { AUTH_TOKENS: '{not json' }],
    ['AUTH_TOKENS', { AUTH_TOKENS: '{"subject":"a"}' }],
    ['AUTH_TOKENS[0].roles', { AUTH_TOKENS: '[{"subject":"a","roles":["wizard"],"token":"0123456789abcdef"}]' }],
    ['AUTH_TOKENS[0]', { AUTH_TOKENS: '[{"subject":"a","roles":["viewer"]}]' }],
    ['AUTH_TOKENS[0].token', { AUTH_TOKENS: '[{"subject":"a","roles":["viewer"],"token":"short"}]' }],
    ['AUTH_TOKENS[0].sha256', { AUTH_TOKENS: '[{"subject":"a","roles":["viewer"],"sha256":"xyz"}]' }],
    ['AUTH_TOKENS[1].subject', { AUTH_TOKENS: '[{"subject":"a","roles":["viewer"],"token":"0123456789abcdef"},{"subject":"a","roles":["sre"],"token":"fedcba9876543210"}]' }],
    ['AUTH_TOKENS_FILE', { AUTH_TOKENS_FILE: '/nonexistent/tokens.json' }],
    ['MIGRATION_CONFIG', { MIGRATION_CONFIG: '/nonexistent/migration-config.js' }],
    ['METRICS_TOKEN', { METRICS_TOKEN: 'short' }],
  ];
  for (const [key, env] of bad) {
    test(`a bad ${key} is refused naming the key`, async () => {
      const err = await configError({ ...BASE, ...env });
      assert.equal(err.key, key);
      assert.ok(err.message.startsWith(`${key}:`), err.message);
    });
  }

  test('error messages never echo a database URL or its password', async () => {
    const err = await configError({ DATABASE_URL: 'mysql://admin:hunter2secret@db.internal/x' });
    assert.doesNotMatch(err.message, /hunter2secret|db\.internal/);
  });

  test('tokens are kept only as sha256 digests; sha256 entries work', async () => {
    const config = await loadConfig({
      ...BASE,
      AUTH_TOKENS: JSON.stringify([
        { subject: 'alice', roles: ['requester'], token: 'plain-secret-0123456789' },
        { subject: 'bob', roles: ['engineering', 'sre'], sha256: sha256Hex('bobs-token-0123456789') },
      ]),
    });
    assert.equal(config.authTokens.length, 2);
    assert.equal(config.authTokens[0]!.sha256.toString('hex'), sha256Hex('plain-secret-0123456789'));
    assert.equal(JSON.stringify(config.authTokens).includes('plain-secret'), false);
    assert.deepEqual(config.authTokens[1]!.roles, ['engineering', 'sre']);
  });
});

describe('AUTH_TOKENS_FILE and MIGRATION_CONFIG files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sf-config-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('AUTH_TOKENS_FILE is read; setting both sources is refused', async () => {
    const file = join(dir, 'tokens.json');
    await writeFile(file, JSON.stringify([{ subject: 'ops', roles: ['operator'], token: 'operator-token-0123456789' }]));
    const config = await loadConfig({ ...BASE, AUTH_TOKENS_FILE: file });
    assert.equal(config.authTokens[0]!.subject, 'ops');
    const err = await configError({ ...BASE, AUTH_TOKENS_FILE: file, AUTH_TOKENS: '[]' });
    assert.equal(err.key, 'AUTH_TOKENS_FILE');
  });

  test('a custom migration config replaces the default environments', async () => {
    const file = join(dir, 'custom.js');
    await writeFile(file, `export default { environments: { qa: { databaseUrlEnv: 'QA_DB', migrationsDir: '/abs/migrations', approvals: { required: ['sre', 'any'] } } } };`);
    const config = await loadConfig({ ...BASE, MIGRATION_CONFIG: file, QA_DB: 'postgres://q@h/qa' });
    assert.deepEqual(Object.keys(config.environments), ['qa']);
    const qa = config.environments.qa!;
    assert.equal(qa.migrationsDir, '/abs/migrations');
    assert.deepEqual(qa.approvals.required, ['sre', 'any']);
    assert.equal(qa.lockTimeoutMs, 2000, 'defaults fill what the file leaves out');
    assert.deepEqual(qa.backup, { method: 'pg_dump', dir: null, lockWaitTimeoutMs: 60_000 }, 'null: DATA_DIR/backups');
    assert.deepEqual(qa.workers, { pause: { method: 'sql' }, resumeOnFailure: false, resumeWhenNothingLanded: true, pauseTimeoutMs: 120000 });
    assert.equal(config.targetUrls.qa, 'postgres://q@h/qa');
  });

  test('a migration config file that throws is reported under MIGRATION_CONFIG', async () => {
    const file = join(dir, 'broken.js');
    await writeFile(file, `throw new Error('boom');`);
    const err = await configError({ ...BASE, MIGRATION_CONFIG: file });
    assert.equal(err.key, 'MIGRATION_CONFIG');
    assert.match(err.message, /boom/);
  });
});

describe('environments in migration-config.js', () => {
  const root = '/project';
  const env = (overrides: Record<string, unknown>) => ({ environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', ...overrides } } });
  const refuse = (value: unknown, key: string) => {
    assert.throws(() => parseMigrationConfig(value, root), (err: unknown) => err instanceof ConfigError && err.key === key, key);
  };

  test('the repo default parses: production needs engineering + sre, staging any', async () => {
    const config = await loadConfig(BASE);
    const { staging, production } = config.environments;
    assert.deepEqual(production!.approvals.required, ['engineering', 'sre']);
    assert.deepEqual(staging!.approvals.required, ['any']);
    assert.deepEqual(production!.windows, [{ cron: '0 2 * * 2-4', durationMinutes: 120, timezone: 'Europe/Berlin' }]);
    assert.equal(production!.freezes[0]!.from.toISOString(), '2026-12-20T00:00:00.000Z');
    assert.equal(production!.databaseUrlEnv, 'PRODUCTION_DATABASE_URL');
    assert.match(production!.migrationsDir, /database\/migrations$/);
    assert.deepEqual(production!.verify.tables, ['hero_snapshots', 'user_profile_summary', 'user_troops']);
    assert.equal(production!.verify.degradeMinFailures, 10, 'the default minimum of new processing errors');
    assert.equal(production!.apply.mode, 'confirm');
    assert.equal(staging!.apply.mode, 'auto');
  });

  test("verify.smokeEtl: 'auto' by default (run where the ETL tables are), true, false or 'auto'; anything else refused", () => {
    const parsed = parseMigrationConfig({ environments: {
      plain: { databaseUrlEnv: 'A' }, required: { databaseUrlEnv: 'B', verify: { smokeEtl: true } },
      off: { databaseUrlEnv: 'C', verify: { smokeEtl: false } }, auto: { databaseUrlEnv: 'D', verify: { smokeEtl: 'auto' } },
    } }, root);
    assert.deepEqual([parsed.plain!.verify.smokeEtl, parsed.required!.verify.smokeEtl, parsed.off!.verify.smokeEtl, parsed.auto!.verify.smokeEtl], ['auto', true, false, 'auto']);
    refuse(env({ verify: { smokeEtl: 'yes' } }), 'environments.staging.verify.smokeEtl');
  });

  test('an environment named production defaults to engineering + sre approvals', () => {
    const parsed = parseMigrationConfig({ environments: { production: { databaseUrlEnv: 'P' }, dev: { databaseUrlEnv: 'D' } } }, root);
    assert.deepEqual(parsed.production!.approvals.required, ['engineering', 'sre']);
    assert.deepEqual(parsed.dev!.approvals.required, ['any']);
    assert.equal(parsed.dev!.migrationsDir, '/project/database/migrations');
  });

  test('bad settings are refused naming the config path', () => {
    refuse({}, 'environments');
    refuse({ environments: {} }, 'environments');
    refuse({ environments: { 'Bad Name': { databaseUrlEnv: 'X' } } }, 'environments.Bad Name');
    refuse(env({ databaseUrlEnv: 'lower-case' }), 'environments.staging.databaseUrlEnv');
    refuse(env({ colour: 'blue' }), 'environments.staging.colour');
    refuse(env({ windows: [{ cron: '61 * * * *', durationMinutes: 60 }] }), 'environments.staging.windows[0].cron');
    refuse(env({ windows: [{ cron: '0 2 * * *', durationMinutes: 60, timezone: 'Mars/Olympus' }] }), 'environments.staging.windows[0].timezone');
    refuse(env({ windows: [{ cron: '0 2 * * *', durationMinutes: 0 }] }), 'environments.staging.windows[0].durationMinutes');
    refuse(env({ freezes: [{ from: '2026-12-20', to: '2027-01-05T00:00:00Z' }] }), 'environments.staging.freezes[0].from');
    refuse(env({ freezes: [{ from: '2027-01-05T00:00:00Z', to: '2026-12-20T00:00:00Z' }] }), 'environments.staging.freezes[0].to');
    refuse(env({ approvals: { required: ['boss'] } }), 'environments.staging.approvals.required[0]');
    refuse(env({ approvals: { required: [] } }), 'environments.staging.approvals.required');
    refuse(env({ lockTimeoutMs: -1 }), 'environments.staging.lockTimeoutMs');
    refuse(env({ lockTimeoutMs: '2s' }), 'environments.staging.lockTimeoutMs');
    refuse(env({ lockRetries: { attempts: 3, baseDelayMs: 1000, maxDelayMs: 10 } }), 'environments.staging.lockRetries.maxDelayMs');
    refuse(env({ migrationsTable: 'pg; drop table x' }), 'environments.staging.migrationsTable');
    refuse(env({ backup: { method: 'tape' } }), 'environments.staging.backup.method');
    refuse(env({ backup: { method: 'external', createCommand: 'snap' } }), 'environments.staging.backup.verifyCommand');
    refuse(env({ workers: { pause: { method: 'http', pauseUrl: 'ftp://x', resumeUrl: 'http://y' } } }), 'environments.staging.workers.pause.pauseUrl');
    refuse(env({ workers: { pause: { method: 'command', pause: 'kubectl scale --replicas=0' } } }), 'environments.staging.workers.pause.resume');
    refuse(env({ verify: { tables: ['Robert"); DROP'] } }), 'environments.staging.verify.tables[0]');
    refuse(env({ verify: { degradeFactor: 0.5 } }), 'environments.staging.verify.degradeFactor');
    refuse(env({ verify: { degradeMinFailures: 0 } }), 'environments.staging.verify.degradeMinFailures');
    refuse(env({ verify: { degradeMinFailures: 2.5 } }), 'environments.staging.verify.degradeMinFailures');
    refuse(env({ verify: { degradeMinFailures: '10' } }), 'environments.staging.verify.degradeMinFailures');
    refuse(env({ notify: [{ kind: 'pager', urlEnv: 'X' }] }), 'environments.staging.notify[0].kind');
    refuse({ environments: { a: { databaseUrlEnv: 'SAME' }, b: { databaseUrlEnv: 'SAME' } } }, 'environments.b.databaseUrlEnv');
  });

  test('apply mode: confirm by default for production and wherever an sre approves, auto elsewhere; explicit settings win', () => {
    const parsed = parseMigrationConfig({ environments: {
      production: { databaseUrlEnv: 'P' },
      prod_eu: { databaseUrlEnv: 'E', approvals: { required: ['engineering', 'sre'] } },
      dev: { databaseUrlEnv: 'D' },
      qa: { databaseUrlEnv: 'Q', apply: { mode: 'confirm' } },
      hotfix: { databaseUrlEnv: 'H', approvals: { required: ['sre'] }, apply: { mode: 'auto' } },
    } }, root);
    assert.deepEqual(Object.fromEntries(Object.entries(parsed).map(([n, e]) => [n, e.apply.mode])), { production: 'confirm', prod_eu: 'confirm', dev: 'auto', qa: 'confirm', hotfix: 'auto' });
    assert.equal(parsed.dev!.requires, null);
  });

  test('apply and requires are validated, naming the key', () => {
    refuse(env({ apply: { mode: 'yolo' } }), 'environments.staging.apply.mode');
    refuse(env({ apply: { mode: 'auto', when: 'now' } }), 'environments.staging.apply.when');
    refuse(env({ apply: 'auto' }), 'environments.staging.apply');
    refuse(env({ requires: { environment: 'qa' } }), 'environments.staging.requires.environment');
    refuse(env({ requires: { environment: 'staging' } }), 'environments.staging.requires.environment');
    refuse(env({ requires: { env: 'x' } }), 'environments.staging.requires.env');
    refuse({ environments: { a: { databaseUrlEnv: 'A', requires: { environment: 'b' } }, b: { databaseUrlEnv: 'B', requires: { environment: 'a' } } } }, 'environments.a.requires.environment');
    const ok = parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'S' }, production: { databaseUrlEnv: 'P', requires: { environment: 'staging' } } } }, root);
    assert.deepEqual(ok.production!.requires, { environment: 'staging' });
  });

  test('worker pause, backup and window variants parse', () => {
    const parsed = parseMigrationConfig(env({
      windows: [{ cron: '0 2 * * 2-4', durationMinutes: 120, timezone: 'Europe/Berlin' }],
      backup: { method: 'external', createCommand: 'snap create', verifyCommand: 'snap verify' },
      workers: { pause: { method: 'command', pause: 'kubectl scale deployment etl-worker --replicas=0', resume: 'kubectl scale deployment etl-worker --replicas=1' } },
      lockRetries: { attempts: 3 },
    }), root);
    const staging = parsed.staging!;
    assert.equal(staging.backup.method, 'external');
    assert.equal(staging.workers.pause.method, 'command');
    assert.deepEqual(staging.lockRetries, { attempts: 3, baseDelayMs: 500, maxDelayMs: 30000, cancelBlockersAfterMs: null });
  });
});

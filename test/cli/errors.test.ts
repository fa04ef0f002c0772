// How `sfm` fails: exit 2 for usage and configuration, exit 3 for every API
// error (problem+json detail on stderr) and for an unreachable service; never
// a token or URL credentials in the output.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestApp, tokenOf, type TestApp } from '../support/app.js';
import { freePort } from '../support/net.js';
import { exits, listen, sfm } from './helpers.js';

let t: TestApp;
let url: string;
let tmp: string;
const NO_SUCH_RUN = '00000000-0000-4000-8000-000000000000';

before(async () => {
  t = await startTestApp({ label: 'cli_err' });
  url = await listen(t);
  tmp = await mkdtemp(join(tmpdir(), 'sf-cli-err-'));
});
after(async () => {
  await t.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('usage errors exit 2', () => {
  test('unknown command, unknown option, missing required option, bad value', async () => {
    const unknown = await sfm(url, ['deploy'], { as: 'vic' });
    exits(unknown, 2, 'unknown command');
    assert.match(unknown.stderr, /^error: unknown command 'deploy'/);
    assert.equal(unknown.stdout, '');

    const option = await sfm(url, ['runs', 'list', '--colour'], { as: 'vic' });
    exits(option, 2, 'unknown option');
    assert.match(option.stderr, /unknown option '--colour'/);

    const missing = await sfm(url, ['runs', 'create', '--description', 'no environment'], { as: 'alice' });
    exits(missing, 2, 'missing --environment');
    assert.match(missing.stderr, /^error: required option '--environment <env>' not specified/);

    const role = await sfm(url, ['runs', 'approve', NO_SUCH_RUN, '--role', 'admin'], { as: 'bob' });
    exits(role, 2, 'bad --role');
    assert.match(role.stderr, /Allowed choices are engineering, sre/);

    const combo = await sfm(url, ['runs', 'rollback', NO_SUCH_RUN, '--reject'], { as: 'carol' });
    exits(combo, 2, '--reject without --comment');
    assert.match(combo.stderr, /^error: --reject needs --comment <text>$/m);

    const bare = await sfm(url, ['runs'], { as: 'vic' });
    exits(bare, 2, 'runs without a subcommand');
    assert.match(bare.stderr, /Usage: sfm runs/);
  });

  test('SFM_URL or the token missing, or both token variables set', async () => {
    const noUrl = await sfm(undefined, ['runs', 'list'], { as: 'vic' });
    exits(noUrl, 2, 'no SFM_URL');
    assert.match(noUrl.stderr, /^error: SFM_URL is not set/);

    const noToken = await sfm(url, ['runs', 'list']);
    exits(noToken, 2, 'no SFM_TOKEN');
    assert.match(noToken.stderr, /^error: SFM_TOKEN \(or SFM_TOKEN_FILE/);

    const file = join(tmp, 'token');
    await writeFile(file, `${tokenOf('vic')}\n`);
    const both = await sfm(url, ['runs', 'list'], { as: 'vic', env: { SFM_TOKEN_FILE: file } });
    exits(both, 2, 'both token variables');

    const badUrl = await sfm('ftp://example.com', ['runs', 'list'], { as: 'vic' });
    exits(badUrl, 2, 'non-http SFM_URL');
    assert.match(badUrl.stderr, /SFM_URL must be an http\(s\) URL/);
  });

  test('--help and --version exit 0; the help documents the exit codes', async () => {
    const help = await sfm(undefined, ['--help']);
    exits(help, 0, '--help');
    assert.match(help.stdout, /Exit codes:\n {2}0 {2}success\n {2}1 {2}runs wait: .*\n {2}2 {2}usage error.*\n {2}3 {2}API error.*\n {2}4 {2}runs wait: timed out/);
    assert.match(help.stdout, /SFM_TOKEN_FILE/);
    const sub = await sfm(undefined, ['runs', 'wait', '--help']);
    exits(sub, 0, 'runs wait --help');
    assert.match(sub.stdout, /--until <point>/);
    const version = await sfm(undefined, ['--version']);
    exits(version, 0, '--version');
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});

describe('API errors exit 3 with the problem detail', () => {
  test('a bad token: 401', async () => {
    const res = await sfm(url, ['runs', 'list'], { env: { SFM_TOKEN: 'not-a-real-token-7f3a9c' } });
    exits(res, 3, 'bad token');
    assert.match(res.stderr, /^error: 401 Unauthorized: \S/);
    assert.equal(res.stdout, '');
  });

  test('a requester approving: 403', async () => {
    const res = await sfm(url, ['runs', 'approve', NO_SUCH_RUN, '--role', 'engineering'], { as: 'alice' });
    exits(res, 3, 'requester approving');
    assert.match(res.stderr, /^error: 403 Forbidden: \S/);
  });

  test('an unknown run: 404; a malformed id: 400 with one line per field error', async () => {
    const missing = await sfm(url, ['runs', 'show', NO_SUCH_RUN], { as: 'vic' });
    exits(missing, 3, 'unknown run');
    assert.equal(missing.stderr, `error: 404 Not Found: Run ${NO_SUCH_RUN} does not exist.\n`);

    const malformed = await sfm(url, ['runs', 'wait', 'not-a-uuid'], { as: 'vic' });
    exits(malformed, 3, 'malformed id');
    assert.match(malformed.stderr, /^error: 400 Bad Request: Invalid params/);
    assert.match(malformed.stderr, /^ {2}params\/id: must match format "uuid"$/m);
  });

  test('a token from SFM_TOKEN_FILE works; --json output parses', async () => {
    const file = join(tmp, 'vic-token');
    await writeFile(file, `${tokenOf('vic')}\n`);
    const envs = await sfm(url, ['--json', 'environments'], { env: { SFM_TOKEN_FILE: file } });
    exits(envs, 0, 'environments with SFM_TOKEN_FILE');
    const parsed = JSON.parse(envs.stdout);
    assert.deepEqual(parsed.map((e: { name: string }) => e.name).sort(), ['production', 'staging']);
    const list = await sfm(url, ['runs', 'list', '--json', '--limit', '5'], { env: { SFM_TOKEN_FILE: file } });
    exits(list, 0, 'runs list --json');
    assert.deepEqual(JSON.parse(list.stdout), { items: [], nextCursor: null });
    const windows = await sfm(url, ['--json', 'windows', 'production', '--count', '2'], { as: 'vic' });
    exits(windows, 0, 'windows --json');
    assert.equal(JSON.parse(windows.stdout).length, 2);
  });

  test('etl health on a target without ETL tables: 409 naming the fix', async () => {
    const res = await sfm(url, ['etl', 'health', '--environment', 'staging'], { as: 'vic' });
    exits(res, 3, 'etl health');
    assert.match(res.stderr, /^error: 409 Conflict: .*no ETL tables yet/);
    // Across every environment, that one's error is its row; the others still show.
    const all = await sfm(url, ['--json', 'etl', 'health'], { as: 'vic' });
    exits(all, 0, 'etl health (all)');
    const rows = JSON.parse(all.stdout) as Array<{ environment: string; error?: string }>;
    assert.deepEqual(rows.map((r) => r.environment).sort(), ['production', 'staging']);
    assert.match(rows.find((r) => r.environment === 'staging')!.error ?? '', /^409 .*no ETL tables yet/);
  });

  test('an empty optional value (an unset workflow input) is left out, not sent as ""', async () => {
    const res = await sfm(url, ['runs', 'create', '--environment', 'staging', '--description', 'empty ticket', '--ticket', '', '--to', '', '-q'], { as: 'alice' });
    exits(res, 0, 'create with --ticket ""');
    const shown = await sfm(url, ['--json', 'runs', 'show', res.stdout.trim()], { as: 'vic' });
    assert.equal(JSON.parse(shown.stdout).ticket, null);
    exits(await sfm(url, ['runs', 'cancel', res.stdout.trim()], { as: 'alice' }), 0, 'cancel');
  });

  test('backfills: the commands parse and an API answer of 404 exits 3', async () => {
    for (const args of [['backfills', 'show', NO_SUCH_RUN], ['backfills', 'pause', NO_SUCH_RUN]]) {
      const res = await sfm(url, args, { as: 'olga' });
      exits(res, 3, args.join(' '));
      assert.match(res.stderr, /^error: 404 Not Found/);
    }
  });
});

describe('an unreachable service exits 3', () => {
  test('connection refused names the URL without its credentials', async () => {
    const port = await freePort();
    const res = await sfm(`http://deploy:hunter2@127.0.0.1:${port}/`, ['runs', 'list'], { as: 'vic' });
    exits(res, 3, 'connection refused');
    assert.equal(res.stderr, `error: cannot reach the service at http://127.0.0.1:${port}: ECONNREFUSED\n`);
    assert.ok(!res.stderr.includes('hunter2'));
    const viaOption = await sfm(undefined, ['--url', `http://127.0.0.1:${port}`, 'runs', 'show', NO_SUCH_RUN], { as: 'vic' });
    exits(viaOption, 3, '--url, connection refused');
    assert.match(viaOption.stderr, /ECONNREFUSED/);
  });
});

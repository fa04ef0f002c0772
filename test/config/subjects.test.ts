// A token file with two spellings of one subject is a start-up error naming
// both: otherwise one person holding both tokens is two approvers.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const entry = (subject: string, i: number, roles = ['sre']) => ({ subject, roles, token: `token-number-${i}-0123456789abcdef` });

async function refused(env: Record<string, string>): Promise<ConfigError> {
  try {
    await loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the tokens to be refused');
}

test('AUTH_TOKENS with subjects that differ only in case is refused, naming both entries and both spellings', async () => {
  for (const [a, b] of [['alice', 'Alice'], ['BOB', 'bob'], ['carol.sre@example.com', 'Carol.SRE@example.com']]) {
    const err = await refused({ AUTH_TOKENS: JSON.stringify([entry('zed', 0), entry(a!, 1, ['requester']), entry(b!, 2)]) });
    assert.equal(err.key, 'AUTH_TOKENS[2].subject');
    assert.ok(err.message.includes(`"${b}"`) && err.message.includes(`"${a}"`), err.message);
    assert.match(err.message, /AUTH_TOKENS\[1\]\.subject/);
    assert.match(err.message, /case-insensitively after NFKC/);
    assert.equal(err.message.includes('token-number'), false, 'no token value in the message');
  }
});

test('AUTH_TOKENS_FILE is checked the same way; the same subject twice is still refused; distinct subjects load', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sf-subjects-'));
  try {
    const file = join(dir, 'tokens.json');
    await writeFile(file, JSON.stringify([entry('Alice', 1), entry('alice', 2)]));
    const err = await refused({ AUTH_TOKENS_FILE: file });
    assert.equal(err.key, 'AUTH_TOKENS_FILE[1].subject');
    assert.ok(err.message.includes('"alice"') && err.message.includes('"Alice"'), err.message);

    const twice = await refused({ AUTH_TOKENS: JSON.stringify([entry('alice', 1), entry('alice', 2)]) });
    assert.equal(twice.key, 'AUTH_TOKENS[1].subject');
    assert.match(twice.message, /"alice" appears twice/);

    const config = await loadConfig({ AUTH_TOKENS: JSON.stringify([entry('alice', 1), entry('alicia', 2), entry('Bob', 3)]) });
    assert.deepEqual(config.authTokens.map((e) => e.subject), ['alice', 'alicia', 'Bob'], 'subjects keep their configured spelling');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

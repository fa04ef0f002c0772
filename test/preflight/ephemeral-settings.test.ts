// A rehearsal's throw-away database on real PostgreSQL: its sessions commit
// without waiting for the WAL flush; the server's other databases keep theirs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { createEphemeralDatabase } from '../../services/preflight/ephemeral.js';
import { adminQuery, adminUrl } from '../support/db.js';

async function setting(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!.synchronous_commit;
  } finally {
    await client.end();
  }
}

test('every session on a throw-away copy has synchronous_commit off; the server default is untouched', async () => {
  const copy = await createEphemeralDatabase(adminUrl(), 'e5e5e5', randomUUID());
  try {
    assert.equal(await setting(copy.url), 'off');
    assert.equal(await setting(adminUrl()), (await adminQuery("SELECT boot_val FROM pg_settings WHERE name = 'synchronous_commit'")).rows[0].boot_val);
  } finally {
    await copy.drop();
  }
  assert.equal((await adminQuery('SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1', [copy.name])).rowCount, 0, 'its setting went with it');
});

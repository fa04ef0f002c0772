import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { exec, maybeOne, one, rows, withDatabase } from '../../database/db.js';
import { PREFLIGHT_LOCK_CLASS, releaseRunLock, tryRunLock } from '../../database/sql/locks.js';
import { createDatabase, dropDatabase, listRehearsalDatabases, REHEARSAL_DB_PREFIX, throwAwayDatabaseSettings } from '../../database/sql/preflight.js';
import type { Logger } from '../logger.js';

// sf_rehearsal_<owner>_<run id hex>_<random>. The run id lets a sweep find the
// run whose advisory lock says whether a live preflight owns the database.
// Advisory locks are per database, so the owner tag (from the control
// database) keeps one service from sweeping another's rehearsals when they
// share a preflight server.
const NAME = /^sf_rehearsal_([0-9a-f]{6})_([0-9a-f]{32})_[0-9a-f]{4}$/;

/** A short, stable tag for the control database (never its credentials). */
export function ownerTag(controlUrl: string): string {
  const url = new URL(controlUrl);
  return createHash('sha256').update(`${url.hostname}:${url.port}${url.pathname}`).digest('hex').slice(0, 6);
}

/** What every throw-away database of one run (of this control database) starts with. */
export const runCopyPrefix = (owner: string, runId: string): string => `${REHEARSAL_DB_PREFIX}${owner}_${runId.replace(/-/g, '')}_`;

export function rehearsalDatabaseName(owner: string, runId: string): string {
  return `${runCopyPrefix(owner, runId)}${randomBytes(2).toString('hex')}`;
}

function parseName(database: string): { owner: string; runId: string } | null {
  const match = NAME.exec(database);
  if (!match) return null;
  const hex = match[2]!;
  return { owner: match[1]!, runId: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` };
}

export async function withServer<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl, application_name: 'starforge-preflight' });
  // A server going away fails the query in flight; the 'error' pg also emits must not crash the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface EphemeralDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A throw-away database on the preflight server; drop() is idempotent and forceful. */
export async function createEphemeralDatabase(serverUrl: string, owner: string, runId: string, name = rehearsalDatabaseName(owner, runId)): Promise<EphemeralDatabase> {
  await withServer(serverUrl, async (client) => {
    await exec(client, createDatabase(client.escapeIdentifier(name)));
    await exec(client, throwAwayDatabaseSettings(client.escapeIdentifier(name)));
  });
  let dropped = false;
  return {
    name,
    url: withDatabase(serverUrl, name),
    async drop() {
      if (dropped) return;
      await withServer(serverUrl, (client) => exec(client, dropDatabase(client.escapeIdentifier(name))));
      dropped = true;
    },
  };
}

/**
 * Drops rehearsal databases left by a process that died mid-rehearsal. A
 * database is only dropped when its run's preflight lock is free, so a live
 * rehearsal on another replica is never touched.
 */
export async function sweepOrphanedRehearsals(serverUrl: string, owner: string, control: pg.Pool, log: Logger): Promise<string[]> {
  const dropped: string[] = [];
  const names = await withServer(serverUrl, (client) => rows<{ datname: string }>(client, listRehearsalDatabases()));
  if (names.length === 0) return dropped;
  const lockClient = await control.connect();
  try {
    for (const { datname } of names) {
      const parsed = parseName(datname);
      if (!parsed || parsed.owner !== owner) continue;
      const { runId } = parsed;
      const { locked } = await one<{ locked: boolean }>(lockClient, tryRunLock(PREFLIGHT_LOCK_CLASS, runId));
      if (!locked) continue;
      try {
        await withServer(serverUrl, (client) => exec(client, dropDatabase(client.escapeIdentifier(datname))));
        dropped.push(datname);
      } finally {
        await maybeOne(lockClient, releaseRunLock(PREFLIGHT_LOCK_CLASS, runId));
      }
    }
  } finally {
    lockClient.release();
  }
  if (dropped.length) log.info({ dropped }, 'dropped rehearsal databases orphaned by a dead preflight');
  return dropped;
}

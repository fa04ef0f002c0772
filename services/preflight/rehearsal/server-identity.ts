import pg from 'pg';
import { maybeOne, one } from '../../../database/db.js';
import { scrubSecrets } from '../../../database/pg-errors.js';
import { serverWhereabouts, systemIdentifier } from '../../../database/sql/server-identity.js';
import type { RehearsalServer } from './types.js';

interface Facts {
  systemId: string | null;
  started: string;
  addr: string | null;
  port: string;
  dataDirectory: string | null;
}

async function factsOf(url: string): Promise<Facts> {
  const client = new pg.Client({ connectionString: url, application_name: 'starforge-rehearsal', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // the query in flight reports a lost server
  await client.connect();
  try {
    const id = await maybeOne<{ id: string }>(client, systemIdentifier()).catch(() => undefined);
    const w = await one<{ started: string; addr: string | null; port: number | null; port_setting: string; data_directory: string | null }>(client, serverWhereabouts());
    return { systemId: id?.id ?? null, started: w.started, addr: w.addr, port: String(w.port ?? w.port_setting), dataDirectory: w.data_directory };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Whether the rehearsal server is the target's own server. The system
 * identifier tells clusters apart (a clone restored from the target's base
 * backup shares it, so the postmaster's start time must match too); without
 * it, the data directory and port; without that, the start time and port
 * (to the microsecond: two servers do not start at the same moment).
 */
export async function compareServers(targetUrl: string, serverUrl: string): Promise<RehearsalServer> {
  let target: Facts;
  let server: Facts;
  try {
    [target, server] = await Promise.all([factsOf(targetUrl), factsOf(serverUrl)]);
  } catch (err) {
    return { sameAsTarget: null, method: `could not be told (${scrubSecrets((err as Error).message, [targetUrl, serverUrl])})` };
  }
  if (target.systemId && server.systemId) {
    return {
      sameAsTarget: target.systemId === server.systemId && target.started === server.started,
      method: 'system identifier (pg_control_system) and postmaster start time',
    };
  }
  if (target.dataDirectory && server.dataDirectory) {
    return {
      sameAsTarget: target.dataDirectory === server.dataDirectory && target.port === server.port && target.started === server.started,
      method: 'data directory, port and postmaster start time',
    };
  }
  return { sameAsTarget: target.started === server.started && target.port === server.port, method: 'postmaster start time and port' };
}

/**
 * Names the server a session is on, the same across its restarts (no start
 * time): its system identifier, else its port and data directory. Whatever
 * a rehearsal recorded about one server is only acted on there
 * (globals-sweep.ts).
 */
export async function serverKeyOf(client: pg.ClientBase): Promise<string> {
  const id = await maybeOne<{ id: string }>(client, systemIdentifier()).catch(() => undefined);
  if (id?.id) return `system ${id.id}`;
  const w = await one<{ port_setting: string; data_directory: string | null }>(client, serverWhereabouts());
  return `port ${w.port_setting} ${w.data_directory ?? '(data directory hidden)'}`;
}

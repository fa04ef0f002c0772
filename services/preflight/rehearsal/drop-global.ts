import type pg from 'pg';
import { exec } from '../../../database/db.js';
import { DEPENDENT_OBJECTS_STILL_EXIST, isPgError } from '../../../database/pg-errors.js';
import {
  detachSubscriptionSlot, disableSubscription, dropOwnedBy, dropRole, dropSubscription, dropTablespace,
} from '../../../database/sql/cluster-globals.js';
import { dropDatabase, dropDatabaseUnforced } from '../../../database/sql/preflight.js';

// How a server-wide object a rehearsal created is removed again: by the
// guard's cleanup of a live rehearsal and by the sweep after a dead one
// (globals-sweep.ts), so both do and say the same. Each returns how it went
// and throws what PostgreSQL said when the object cannot be dropped.

export type DroppableKind = 'database' | 'tablespace' | 'role';

/**
 * On a session of the server's maintenance database (never the database
 * being dropped). 'plainly': without FORCE or DROP OWNED, so PostgreSQL
 * refuses a database someone is connected to, or a role that holds
 * privileges or owns objects anywhere.
 */
export async function dropServerObject(server: pg.ClientBase, kind: DroppableKind, name: string, how: 'as-cleanup' | 'plainly' = 'as-cleanup'): Promise<string> {
  const escaped = server.escapeIdentifier(name);
  if (kind === 'database') {
    await exec(server, how === 'plainly' ? dropDatabaseUnforced(escaped) : dropDatabase(escaped));
    return 'dropped';
  }
  if (kind === 'tablespace') {
    await exec(server, dropTablespace(escaped));
    return 'dropped';
  }
  try {
    await exec(server, dropRole(escaped));
    return 'dropped';
  } catch (err) {
    // A role that still holds privileges (or owns objects) is stripped of them first.
    if (how === 'plainly' || !isPgError(err, DEPENDENT_OBJECTS_STILL_EXIST)) throw err;
    await exec(server, dropOwnedBy(escaped));
    await exec(server, dropRole(escaped));
    return 'dropped (after DROP OWNED)';
  }
}

/**
 * On a session of the subscription's own database. A plain drop also drops
 * the replication slot on the publisher; where the publisher cannot be
 * reached the slot is let go of, and the outcome says so.
 */
export async function dropSubscriptionIn(db: pg.ClientBase, name: string): Promise<string> {
  const escaped = db.escapeIdentifier(name);
  try {
    await exec(db, dropSubscription(escaped));
    return 'dropped';
  } catch {
    await exec(db, disableSubscription(escaped));
    await exec(db, detachSubscriptionSlot(escaped));
    await exec(db, dropSubscription(escaped));
    return 'dropped; its replication slot on the publisher (if it made one) was left there';
  }
}

export const leftMessage = (err: unknown): string => `left on the server: dropping it failed (${(err as Error).message})`;

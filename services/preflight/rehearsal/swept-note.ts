import { rows, type Queryable } from '../../../database/db.js';
import { sweptSincePreflightStarted } from '../../../database/sql/rehearsal-globals.js';
import type { SweptAttempt, SweptObject } from './globals-sweep.js';

// A preflight resumed after its process died (preflight-service.ts) says in
// its report what the sweep removed of the cut attempt: without it the report
// would be silent about a role that was on the server for a while.

type Details = Pick<SweptAttempt, 'copies' | 'dropped' | 'left'>;

const listed = (objects: SweptObject[]) => objects.map((o) => `${o.kind} ${o.name}${o.migration ? ` (${o.migration})` : ''}`).join(', ');

/** One note per sweep of an earlier attempt since the run's preflight last started. */
export async function sweptEarlierNotes(db: Queryable, runId: string): Promise<string[]> {
  const events = await rows<{ details: Details }>(db, sweptSincePreflightStarted(runId));
  return events.map(({ details: { copies = [], dropped = [], left = [] } }) => {
    const parts = ['An earlier attempt of this preflight was cut short before its cleanup (its process died, or it lost the rehearsal server).'];
    if (dropped.length) parts.push(`What it had created on the rehearsal server was dropped afterwards: ${listed(dropped)}.`);
    if (left.length) parts.push(`Left on the server: ${left.map((o) => `${o.kind} ${o.name} (${o.cleanup})`).join('; ')}.`);
    if (!dropped.length && !left.length && copies.length) parts.push('Its throw-away copy was dropped; nothing it created server-wide was still there.');
    return parts.join(' ');
  });
}

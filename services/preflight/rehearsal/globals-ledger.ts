import { randomUUID } from 'node:crypto';
import { exec, rows } from '../../../database/db.js';
import { scrubSecrets } from '../../../database/pg-errors.js';
import { deleteAttempt, insertRehearsalGlobals, type NewRehearsalGlobal, type ServerObjectKind } from '../../../database/sql/rehearsal-globals.js';
import { selectSnapshotFiles, type SnapshotFileRow } from '../../../database/sql/snapshots.js';
import type { GuardLedger } from './cluster-guard.js';
import { createdInSources } from './globals-candidates.js';
import { sweepRunAttempts } from './globals-sweep.js';
import { serverKeyOf } from './server-identity.js';
import type { ClusterObject, RehearsalInput } from './types.js';

// The cluster guard's record of one rehearsal attempt, kept in the control
// database (table rehearsal_globals) so that a process killed mid-rehearsal
// does not take it along. Written where each kill would otherwise lose it:
//  - at the baseline, before any migration runs: what the run's sealed files
//    CREATE that is not on the server (a kill right after a step committed
//    CREATE ROLE, before the guard looked, still leaves its name);
//  - after each step: what the guard saw it create (names the files compute);
//  - after cleanup: the rows go (a kill during cleanup leaves them, and the
//    sweep drops what cleanup had not). A rehearsal that ends without its
//    cleanup sweeps its own rows at once (the run's lock is still held),
//    rather than leave names a later sweep could take for its own.

const SERVER_KINDS: ReadonlySet<string> = new Set<ServerObjectKind>(['role', 'tablespace', 'database', 'subscription']);

export function globalsLedger(input: RehearsalInput): GuardLedger {
  const { control, digest, log } = input.ledger;
  const attempt = randomUUID();
  const sweep = { control, serverUrl: input.serverUrl, owner: input.owner, log, keepCopy: input.copy?.name };
  let serverKey = '';
  const write = async (objects: NewRehearsalGlobal[]) => {
    if (objects.length) await exec(control, insertRehearsalGlobals(attempt, input.runId, serverKey, objects));
  };
  return {
    async sweepEarlier(server) {
      await sweepRunAttempts(sweep, server, input.runId, attempt, 'earlier');
    },
    async begin(server, baseline) {
      serverKey = await serverKeyOf(server);
      const there = new Set(baseline.map((r) => `${r.kind} ${r.name}`));
      const files = await rows<SnapshotFileRow>(control, selectSnapshotFiles(input.runId, digest));
      const named = createdInSources(files.map((f) => ({ file: f.path, text: f.content.toString('utf8') })));
      await write(named.filter((c) => !there.has(`${c.kind} ${c.name}`)).map((c) => ({ kind: c.kind, name: c.name, origin: 'source', migration: c.file })));
    },
    async created(objects: ClusterObject[]) {
      await write(objects.filter((o) => o.scope === 'server' && SERVER_KINDS.has(o.kind))
        .map((o) => ({ kind: o.kind as ServerObjectKind, name: o.name, origin: 'step', migration: o.migration })));
    },
    async abandoned(server) {
      await sweepRunAttempts(sweep, server, input.runId, attempt, 'this');
    },
    async finish() {
      await exec(control, deleteAttempt(attempt)).catch((err: Error) => {
        log.warn({ runId: input.runId, attempt, reason: scrubSecrets(err.message, [input.serverUrl, input.targetUrl]) }, 'could not delete a finished rehearsal\'s record of server-wide objects; a later sweep finds them gone');
      });
    },
  };
}

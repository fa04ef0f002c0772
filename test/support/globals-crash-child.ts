// Plays a rehearsal that dies holding what it made on the server: takes the
// run's preflight lock (as a preflight does), opens the cluster guard with its
// ledger on the control database, runs the operations it is given (SQL on the
// server; `seen`: the guard looks after a step that ran `statements`), says
// READY and waits to be killed (SIGKILL: no cleanup of any kind runs).
import pg from 'pg';
import { one } from '../../database/db.js';
import { PREFLIGHT_LOCK_CLASS, tryRunLock } from '../../database/sql/locks.js';
import { LINT_DB_PREFIX, REHEARSAL_DB_PREFIX } from '../../database/sql/preflight.js';
import { ClusterGuard } from '../../services/preflight/rehearsal/cluster-guard.js';
import { globalsLedger } from '../../services/preflight/rehearsal/globals-ledger.js';
import type { RehearsalInput } from '../../services/preflight/rehearsal/types.js';

export type CrashOp = { sql: string } | { seen: string; statements: string[] };
export interface CrashSpec {
  controlUrl: string;
  serverUrl: string;
  owner: string;
  runId: string;
  digest: string;
  ops: CrashOp[];
}

const spec = JSON.parse(process.argv[2]!) as CrashSpec;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const lock = new pg.Client({ connectionString: spec.controlUrl });
await lock.connect();
if (!(await one<{ locked: boolean }>(lock, tryRunLock(PREFLIGHT_LOCK_CLASS, spec.runId))).locked) throw new Error('lock not acquired');
const control = new pg.Pool({ connectionString: spec.controlUrl, max: 2 });
const input = { runId: spec.runId, serverUrl: spec.serverUrl, targetUrl: spec.serverUrl, owner: spec.owner, ledger: { control, digest: spec.digest, log: quiet } } as unknown as RehearsalInput;
const guard = await ClusterGuard.open(spec.serverUrl, { ignoreDatabasePrefixes: [REHEARSAL_DB_PREFIX, LINT_DB_PREFIX], ledger: globalsLedger(input) });
const server = new pg.Client({ connectionString: spec.serverUrl });
await server.connect();
for (const op of spec.ops) {
  if ('sql' in op) await server.query(op.sql);
  else await guard.afterStep({ migration: op.seen, phase: 'up', statements: op.statements });
}
process.stdout.write('READY\n');
setInterval(() => undefined, 60_000);

// Plays a preflight that dies mid-rehearsal: holds the run's preflight lock on
// the control database, creates the run's throw-away database, says READY and
// waits to be killed (SIGKILL: no cleanup of any kind runs).
import pg from 'pg';
import { one } from '../../database/db.js';
import { PREFLIGHT_LOCK_CLASS, tryRunLock } from '../../database/sql/locks.js';
import { createEphemeralDatabase } from '../../services/preflight/ephemeral.js';

const [serverUrl, controlUrl, owner, runId] = process.argv.slice(2) as [string, string, string, string];
const control = new pg.Client({ connectionString: controlUrl });
await control.connect();
const { locked } = await one<{ locked: boolean }>(control, tryRunLock(PREFLIGHT_LOCK_CLASS, runId));
if (!locked) throw new Error('lock not acquired');
const db = await createEphemeralDatabase(serverUrl, owner, runId);
process.stdout.write(`READY ${db.name}\n`);
setInterval(() => undefined, 60_000);

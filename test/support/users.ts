import { spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';

/**
 * The prefix that runs a command as the unprivileged user `nobody` (as the
 * image runs the service: not root, not the owner of the application files),
 * or null with the reason when this test process cannot switch users.
 */
export function asNobody(): { prefix: string[]; uid: number; gid: number } | { skip: string } {
  if (userInfo().uid !== 0) return { skip: 'needs root to run a process as the unprivileged user nobody (setpriv); run the tests as root, as CI does' };
  const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) return { skip: 'there is no user nobody on this machine' };
  const setpriv = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', 'true']);
  if (setpriv.status !== 0) return { skip: `setpriv cannot switch to nobody here (${setpriv.error?.message ?? `exit ${setpriv.status}`})` };
  return { prefix: ['setpriv', '--reuid', String(uid), '--regid', String(gid), '--clear-groups'], uid, gid };
}

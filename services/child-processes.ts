import { spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type pg from 'pg';
import { exec, one } from '../database/db.js';
import { endProcess, insertProcess, type ProcessRow } from '../database/sql/recovery.js';
import type { Logger } from './logger.js';

/**
 * Child processes of a run (pg_dump, pg_restore, worker and snapshot
 * commands) must not outlive the service that started them. Two layers:
 *
 * - On Linux they are started through util-linux `setpriv --pdeathsig KILL`,
 *   so the kernel kills the direct child the moment the service dies (kill -9
 *   included). Node has no prctl of its own and no well-kept package offers it.
 * - Each runs in its own process group, recorded in run_processes with its
 *   pid, group, host and start time. A reconciler on the same host kills the
 *   group (a shell command's own children do not inherit the death signal)
 *   after checking from /proc that the pid is still that process. A
 *   reconciler on another host cannot reach it; it terminates the run's target
 *   sessions instead, which ends pg_dump and pg_restore.
 */

let pdeathsig: boolean | undefined;

/** Whether `setpriv --pdeathsig` works here (checked once). */
export function pdeathsigAvailable(): boolean {
  if (pdeathsig === undefined) {
    pdeathsig = process.platform === 'linux' && spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
  }
  return pdeathsig;
}

/** `file args` to spawn so that the child dies with this process where the platform allows. */
export function dieWithParent(file: string, args: string[]): [string, string[]] {
  return pdeathsigAvailable() ? ['setpriv', ['--pdeathsig', 'KILL', '--', file, ...args]] : [file, args];
}

/** A spawned child, as the recorder sees it. */
export interface SpawnedChild {
  child: ChildProcess;
  /** What is being run, for the record and for the /proc check (the program, never its arguments: they may carry paths only). */
  command: string;
  applicationName: string | null;
}

/** Told about every child a run starts; `spawned` returns a function to call once it exited. */
export type OnSpawn = (spawned: SpawnedChild) => void;

/** The target session name of a run's phase: how a reconciler finds what the run left on its target. */
export function runApplicationName(runId: string, phase: 'pause' | 'resume' | 'backup' | 'migrate' | 'down' | 'restore' | 'cleanup'): string {
  return `starforge-run-${runId}-${phase}`;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or null. */
export function processStartTicks(pid: number): number | null {
  const stat = readStat(pid);
  return stat ? stat.startTicks : null;
}

function readStat(pid: number): { pgrp: number; startTicks: number; comm: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces or parentheses itself.
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const fields = text.slice(close + 2).split(' ');
    // fields[0] is field 3 (state): pgrp is field 5, starttime field 22.
    return { pgrp: Number(fields[2]), startTicks: Number(fields[19]), comm };
  } catch {
    return null;
  }
}

/** Records each child of `runId` in run_processes and marks it ended when it exits. */
export function processRecorder(control: pg.Pool, runId: string, phase: string, owner: string | null, log: Logger): OnSpawn {
  return ({ child, command, applicationName }) => {
    const pid = child.pid;
    if (pid === undefined) return;
    const recorded = one<{ id: string }>(control, insertProcess({
      runId, phase, command, host: hostname(), pid, pgid: pid, startTicks: processStartTicks(pid), applicationName, owner,
    })).then((r) => r.id, (err) => {
      log.warn({ err, runId, pid }, 'could not record a child process; a reconciler would not find it');
      return null;
    });
    child.once('exit', (code, signal) => {
      void recorded.then((id) => (id ? exec(control, endProcess(id, signal ? `killed by ${signal}` : `exited ${code}`)) : 0))
        .catch((err) => log.warn({ err, runId, pid }, 'could not record that a child process ended'));
    });
  };
}

export interface KillOutcome {
  pid: number;
  pgid: number;
  command: string;
  host: string;
  phase: string;
  /** What was found and done. */
  result: 'killed' | 'gone' | 'other-host' | 'failed';
  members: number;
  note: string;
}

/** The live processes of group `pgid` that started no earlier than its leader did. */
function groupMembers(pgid: number, leaderStart: number | null): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return members;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    // A group id is not reused while any member lives, so a member that started
    // after the recorded leader belongs to that leader's group.
    if (stat && stat.pgrp === pgid && (leaderStart === null || stat.startTicks >= leaderStart)) members.push(Number(entry));
  }
  return members;
}

/**
 * Kills what is left of a recorded child's process group, if this host is
 * where it ran and /proc shows it is still that group (not a reused pid).
 */
export function killRecorded(row: ProcessRow): KillOutcome {
  const base = { pid: row.pid, pgid: row.pgid, command: row.command, host: row.host, phase: row.phase };
  if (row.host !== hostname()) {
    return { ...base, result: 'other-host', members: 0, note: `ran on ${row.host}; cannot be checked from ${hostname()} (its target session was terminated instead)` };
  }
  const leaderStart = row.start_ticks === null ? null : Number(row.start_ticks);
  if (leaderStart === null) return { ...base, result: 'failed', members: 0, note: 'no start time recorded (not Linux?): not killed, check by hand' };
  const leader = readStat(row.pid);
  // The kernel does not hand out a number still in use as a group id: a live
  // process with that pid but another start time means the old group is gone.
  if (leader && leader.startTicks !== leaderStart) return { ...base, result: 'gone', members: 0, note: `pid ${row.pid} now belongs to another process; the recorded one is gone` };
  const members = groupMembers(row.pgid, leaderStart);
  if (members.length === 0) return { ...base, result: 'gone', members: 0, note: 'no process of its group is left' };
  try {
    process.kill(-row.pgid, 'SIGKILL');
  } catch (err) {
    return { ...base, result: 'failed', members: members.length, note: `kill failed: ${(err as NodeJS.ErrnoException).code ?? 'error'}` };
  }
  return { ...base, result: 'killed', members: members.length, note: `killed process group ${row.pgid} (${members.length} process(es))` };
}

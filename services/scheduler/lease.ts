import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { exec } from '../../database/db.js';
import { dropLease, renewLease } from '../../database/sql/scheduler.js';
import type { Logger } from '../logger.js';

/** How long a claim on an in-flight run holds without a heartbeat. */
export const LEASE_MS = 30_000;

export interface Lease {
  /** This process's name on the runs it applies (runs.lease_owner). */
  owner: string;
  ms: number;
  /**
   * Renews the run's lease every third of its length until the returned
   * stop() (which also drops it). `signal` aborts when the lease is lost
   * (another process reconciled the run) or could not be renewed for a whole
   * lease length (this process is cut off from the control database, so
   * another replica may take over): the holder must stop its work.
   */
  hold(runId: string): HeldLease;
}

export interface HeldLease {
  signal: AbortSignal;
  stop(): Promise<void>;
}

export function createLease(control: pg.Pool, log: Logger, ms = LEASE_MS): Lease {
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  return {
    owner,
    ms,
    hold(runId) {
      const fence = new AbortController();
      let renewedAt = Date.now();
      const lose = (why: string) => {
        if (fence.signal.aborted) return;
        log.warn({ runId, owner }, `stopping work on the run: ${why}`);
        fence.abort(new Error(why));
      };
      const timer = setInterval(() => {
        exec(control, renewLease(runId, owner, ms)).then(
          (n) => {
            if (n === 0) lose('lost the lease on the run (another process reconciled it)');
            else renewedAt = Date.now();
          },
          (err) => {
            log.warn({ err, runId }, 'could not renew the run lease; retrying at the next heartbeat');
            if (Date.now() - renewedAt >= ms) lose(`could not renew the run lease for ${ms} ms (control database unreachable); another replica may take over`);
          },
        );
      }, Math.max(250, Math.floor(ms / 3)));
      timer.unref();
      return {
        signal: fence.signal,
        async stop() {
          clearInterval(timer);
          await exec(control, dropLease(runId, owner)).catch((err) => log.warn({ err, runId }, 'could not drop the apply lease'));
        },
      };
    },
  };
}

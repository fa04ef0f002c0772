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
  /** Renews the run's lease every third of its length until the returned stop() (which also drops it). */
  hold(runId: string): { stop(): Promise<void> };
}

export function createLease(control: pg.Pool, log: Logger, ms = LEASE_MS): Lease {
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  return {
    owner,
    ms,
    hold(runId) {
      let lost = false;
      const timer = setInterval(() => {
        exec(control, renewLease(runId, owner, ms)).then(
          (n) => {
            if (n === 0 && !lost) {
              lost = true;
              log.warn({ runId, owner }, 'lost the lease on a run being applied (another process reconciled it)');
            }
          },
          (err) => log.warn({ err, runId }, 'could not renew the apply lease; retrying at the next heartbeat'),
        );
      }, Math.max(250, Math.floor(ms / 3)));
      timer.unref();
      return {
        async stop() {
          clearInterval(timer);
          await exec(control, dropLease(runId, owner)).catch((err) => log.warn({ err, runId }, 'could not drop the apply lease'));
        },
      };
    },
  };
}

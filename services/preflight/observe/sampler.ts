import pg from 'pg';
import { rows } from '../../../database/db.js';
import { sampleBackendLocks } from '../../../database/sql/observe.js';
import { strongestLock } from '../sql-analysis/lock-modes.js';
import type { LockMode } from '../sql-analysis/types.js';
import { lockModeOf } from './lock-names.js';

/**
 * Without event triggers (the rehearsal role is not a superuser), a second
 * connection polls pg_locks for the rehearsal backend while a migration runs.
 * Locks held to the end of a transaction are seen; one a single short
 * statement takes and drops between two samples can be missed.
 */
export class LockSampler {
  private readonly seen = new Map<string, LockMode>();
  private running = false;
  private loop: Promise<void> | null = null;
  private client: pg.Client | null = null;

  constructor(private readonly url: string, private readonly pid: number, private readonly intervalMs = 5) {}

  async start(): Promise<void> {
    this.client = new pg.Client({ connectionString: this.url, application_name: 'starforge-rehearsal-observer' });
    this.client.on('error', () => undefined);
    await this.client.connect();
    this.running = true;
    this.loop = this.poll();
  }

  private async poll(): Promise<void> {
    while (this.running && this.client) {
      try {
        for (const l of await rows<{ relation: string; relkind: string; mode: string }>(this.client, sampleBackendLocks(this.pid))) {
          if (!['r', 'p', 'm'].includes(l.relkind)) continue;
          const mode = lockModeOf(l.mode);
          this.seen.set(l.relation, strongestLock([this.seen.get(l.relation) ?? 'none', mode]));
        }
      } catch {
        return; // the sampler's connection went away: what it saw so far stands
      }
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
    }
  }

  /** Stops sampling; the strongest mode seen per relation. */
  async stop(): Promise<Map<string, LockMode>> {
    this.running = false;
    await this.loop;
    await this.client?.end().catch(() => undefined);
    this.client = null;
    return new Map(this.seen);
  }
}

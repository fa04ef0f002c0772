import pg from 'pg';
import { exec, rows } from '../../../database/db.js';
import { DEPENDENT_OBJECTS_STILL_EXIST, isPgError } from '../../../database/pg-errors.js';
import {
  databaseGlobals, detachSubscriptionSlot, disableSubscription, dropOwnedBy, dropRole, dropSubscription,
  dropTablespace, serverGlobals, type GlobalRow,
} from '../../../database/sql/cluster-globals.js';
import { dropDatabase } from '../../../database/sql/preflight.js';
import type { ClusterObject, Phase } from './types.js';

// A migration can create things a throw-away database does not contain: a
// role, a tablespace, another database, a subscription (shared by the whole
// server, which may be the target's), or inside the copy an event trigger or
// a publication (gone with the copy, but on the target they would persist and
// act on everything). The guard snapshots them before the rehearsal and
// after every step, names the migration that made each change, and removes
// what the rehearsal created once the copy is gone.
//
// The server is shared: other sessions create databases and roles meanwhile.
// A server-wide change is taken as the rehearsal's only when the step's SQL
// names the object; anything else that came and went is someone else's and
// is neither reported nor touched.

const keyOf = (r: Pick<GlobalRow, 'kind' | 'name'>) => `${r.kind} ${r.name}`;

function named(statements: string[], name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // As a bare identifier (any case), or quoted exactly.
  const bare = new RegExp(`(^|[^a-z0-9_$"])${escaped.toLowerCase()}([^a-z0-9_$"]|$)`);
  return statements.some((s) => bare.test(s.toLowerCase()) || s.includes(`"${name.replace(/"/g, '""')}"`) || s.includes(`'${name.replace(/'/g, "''")}'`));
}

// A step whose SQL has none of these words cannot have created or changed a
// server-wide object (nor run code that does), so the snapshot after it is
// skipped: a change seen later is still attributed only to a step that names it.
const MAY_TOUCH_SERVER = /\b(role|user|group|tablespace|database|subscription|grant|revoke|owned|owner|authorization|current_role|current_user|session_user|select|call|do|perform|execute)\b/i;
const MAY_TOUCH_COPY = /\b(event|publication|select|call|do|perform|execute)\b/i;

export interface StepSeen {
  migration: string;
  phase: Phase;
  statements: string[];
}

export interface GuardOptions {
  /** Database name prefixes never taken for a migration's (throw-away copies of any service). */
  ignoreDatabasePrefixes: string[];
}

export class ClusterGuard {
  private baseline = new Map<string, GlobalRow>();
  private last = new Map<string, GlobalRow>();
  private lastLocal = new Map<string, GlobalRow>();
  private readonly found = new Map<string, ClusterObject>();

  private constructor(private readonly server: pg.Client, private readonly options: GuardOptions) {}

  /** Connects to the rehearsal server (its maintenance database) and takes the baseline. */
  static async open(serverUrl: string, options: GuardOptions): Promise<ClusterGuard> {
    const client = new pg.Client({ connectionString: serverUrl, application_name: 'starforge-rehearsal-guard' });
    client.on('error', () => undefined); // the query in flight reports a lost server
    await client.connect();
    const guard = new ClusterGuard(client, options);
    guard.baseline = await guard.snapshot();
    guard.last = guard.baseline;
    return guard;
  }

  private async snapshot(): Promise<Map<string, GlobalRow>> {
    const found = await rows<GlobalRow>(this.server, serverGlobals(this.options.ignoreDatabasePrefixes));
    return new Map(found.map((r) => [keyOf(r), r]));
  }

  /** The copy's own event triggers and publications, before its first migration. */
  async baselineCopy(copy: pg.ClientBase): Promise<void> {
    this.lastLocal = new Map((await rows<GlobalRow>(copy, databaseGlobals())).map((r) => [keyOf(r), r]));
  }

  private record(row: GlobalRow, change: ClusterObject['change'], step: StepSeen, scope: ClusterObject['scope']): void {
    const key = `${keyOf(row)} ${change}`;
    if (this.found.has(key)) return;
    const cleanup = scope === 'database' ? 'gone with the copy' : change === 'created' ? 'to be dropped' : 'not reverted: the rehearsal cannot restore it';
    this.found.set(key, { kind: row.kind, name: row.name, change, migration: step.migration, phase: step.phase, scope, cleanup });
  }

  /** After a step: what changed since the previous one, as far as the step's SQL names it. `copy`: a session on the copy, for its own objects. */
  async afterStep(step: StepSeen, copy?: pg.ClientBase): Promise<void> {
    const text = step.statements.join('\n');
    // The server's objects and the copy's own are read on two sessions at once.
    const [now, local] = await Promise.all([
      MAY_TOUCH_SERVER.test(text) ? this.snapshot() : null,
      copy && MAY_TOUCH_COPY.test(text) ? rows<GlobalRow>(copy, databaseGlobals()) : null,
    ]);
    if (now) this.compareServer(step, now);
    if (!local) return;
    for (const row of local) if (!this.lastLocal.has(keyOf(row))) this.record(row, 'created', step, 'database');
    this.lastLocal = new Map(local.map((r) => [keyOf(r), r]));
  }

  private compareServer(step: StepSeen, now: Map<string, GlobalRow>): void {
    for (const [key, row] of now) {
      const was = this.last.get(key);
      if (was && was.definition === row.definition) continue;
      if (!named(step.statements, row.name) && !(row.kind === 'role' && was && /\b(current_user|current_role|session_user)\b/i.test(step.statements.join('\n')))) continue;
      this.record(row, this.baseline.has(key) ? 'changed' : 'created', step, 'server');
    }
    for (const [key, row] of this.last) {
      if (!now.has(key) && this.baseline.has(key) && named(step.statements, row.name)) this.record(row, 'removed', step, 'server');
    }
    this.last = now;
  }

  /** What the rehearsal's migrations did outside the copy's schema, in the order seen. */
  objects(): ClusterObject[] {
    return [...this.found.values()];
  }

  private created(kind: ClusterObject['kind']): ClusterObject[] {
    return this.objects().filter((o) => o.kind === kind && o.change === 'created' && o.scope === 'server');
  }

  /**
   * Before the copy is dropped: subscriptions created in it (DROP DATABASE
   * refuses a database that has one). A plain drop also drops the replication
   * slot on the publisher; where the publisher cannot be reached the slot is
   * let go of and the report says so.
   */
  async beforeCopyDrop(copyUrl: string): Promise<void> {
    const subscriptions = this.created('subscription');
    if (subscriptions.length === 0) return;
    const copy = new pg.Client({ connectionString: copyUrl, application_name: 'starforge-rehearsal-guard' });
    copy.on('error', () => undefined);
    await copy.connect();
    try {
      for (const s of subscriptions) {
        const name = copy.escapeIdentifier(s.name);
        try {
          await exec(copy, dropSubscription(name));
          s.cleanup = 'dropped';
        } catch {
          try {
            await exec(copy, disableSubscription(name));
            await exec(copy, detachSubscriptionSlot(name));
            await exec(copy, dropSubscription(name));
            s.cleanup = 'dropped; its replication slot on the publisher (if it made one) was left there';
          } catch (err) {
            s.cleanup = `left on the server: dropping it failed (${(err as Error).message})`;
          }
        }
      }
    } finally {
      await copy.end().catch(() => undefined);
    }
  }

  /**
   * After the copy is dropped: the databases, tablespaces and roles the
   * rehearsal created, in that order (a role may own the others). A role
   * that still holds privileges somewhere is stripped with DROP OWNED first.
   * A failure is recorded on the object, never thrown.
   */
  async cleanup(): Promise<void> {
    const attempt = async (o: ClusterObject, queries: Array<{ text: string }>) => {
      try {
        for (const q of queries) await exec(this.server, q);
        o.cleanup = 'dropped';
      } catch (err) {
        if (o.kind === 'role' && isPgError(err, DEPENDENT_OBJECTS_STILL_EXIST)) {
          try {
            const name = this.server.escapeIdentifier(o.name);
            await exec(this.server, dropOwnedBy(name));
            await exec(this.server, dropRole(name));
            o.cleanup = 'dropped (after DROP OWNED)';
            return;
          } catch (again) {
            err = again;
          }
        }
        o.cleanup = `left on the server: dropping it failed (${(err as Error).message})`;
      }
    };
    try {
      for (const o of this.created('database')) await attempt(o, [dropDatabase(this.server.escapeIdentifier(o.name))]);
      for (const o of this.created('tablespace')) await attempt(o, [dropTablespace(this.server.escapeIdentifier(o.name))]);
      for (const o of this.created('role')) await attempt(o, [dropRole(this.server.escapeIdentifier(o.name))]);
    } catch (err) {
      for (const o of this.objects()) if (o.cleanup === 'to be dropped') o.cleanup = `left on the server: ${(err as Error).message}`;
    }
  }

  async close(): Promise<void> {
    await this.server.end().catch(() => undefined);
  }
}

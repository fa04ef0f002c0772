import pg from 'pg';
import { rows } from '../../../database/db.js';
import { databaseGlobals, serverGlobals, type GlobalRow } from '../../../database/sql/cluster-globals.js';
import { dropServerObject, dropSubscriptionIn, leftMessage } from './drop-global.js';
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
//
// What the guard knows lives in memory and dies with a killed process; a
// ledger (globals-ledger.ts) keeps it in the control database as well, so a
// sweep can drop what a dead rehearsal left.

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

/** A durable record of what the rehearsal may leave on its server (globals-ledger.ts). */
export interface GuardLedger {
  /** Before the baseline: drops what a dead earlier attempt of the same run left, so the baseline does not take it for the server's. */
  sweepEarlier(server: pg.Client): Promise<void>;
  /** Right after the baseline, before any migration can run. */
  begin(server: pg.Client, baseline: GlobalRow[]): Promise<void>;
  /** Server-wide objects a step was just seen creating. */
  created(objects: ClusterObject[]): Promise<void>;
  /** After cleanup: nothing of this attempt is left to sweep. Never throws. */
  finish(): Promise<void>;
  /** Closed without cleanup (the copy was never seeded, or could not be dropped): sweeps this attempt's record now. */
  abandoned(server: pg.Client): Promise<void>;
}

export interface GuardOptions {
  /** Database name prefixes never taken for a migration's (throw-away copies of any service). */
  ignoreDatabasePrefixes: string[];
  /** Without one (sfm lint, which has no control database) a killed process leaves what it created. */
  ledger?: GuardLedger;
}

export class ClusterGuard {
  private baseline = new Map<string, GlobalRow>();
  private last = new Map<string, GlobalRow>();
  private lastLocal = new Map<string, GlobalRow>();
  private readonly found = new Map<string, ClusterObject>();
  private cleaned = false;

  private constructor(private readonly server: pg.Client, private readonly options: GuardOptions) {}

  /** Connects to the rehearsal server (its maintenance database) and takes the baseline. */
  static async open(serverUrl: string, options: GuardOptions): Promise<ClusterGuard> {
    const client = new pg.Client({ connectionString: serverUrl, application_name: 'starforge-rehearsal-guard' });
    client.on('error', () => undefined); // the query in flight reports a lost server
    await client.connect();
    const guard = new ClusterGuard(client, options);
    try {
      await options.ledger?.sweepEarlier(client);
      guard.baseline = await guard.snapshot();
      await options.ledger?.begin(client, [...guard.baseline.values()]);
    } catch (err) {
      await guard.close();
      throw err;
    }
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

  /** The object, when it is new to the record. */
  private record(row: GlobalRow, change: ClusterObject['change'], step: StepSeen, scope: ClusterObject['scope']): ClusterObject | null {
    const key = `${keyOf(row)} ${change}`;
    if (this.found.has(key)) return null;
    const cleanup = scope === 'database' ? 'gone with the copy' : change === 'created' ? 'to be dropped' : 'not reverted: the rehearsal cannot restore it';
    const object: ClusterObject = { kind: row.kind, name: row.name, change, migration: step.migration, phase: step.phase, scope, cleanup };
    this.found.set(key, object);
    return object;
  }

  /** After a step: what changed since the previous one, as far as the step's SQL names it. `copy`: a session on the copy, for its own objects. */
  async afterStep(step: StepSeen, copy?: pg.ClientBase): Promise<void> {
    const text = step.statements.join('\n');
    // The server's objects and the copy's own are read on two sessions at once.
    const [now, local] = await Promise.all([
      MAY_TOUCH_SERVER.test(text) ? this.snapshot() : null,
      copy && MAY_TOUCH_COPY.test(text) ? rows<GlobalRow>(copy, databaseGlobals()) : null,
    ]);
    if (now) await this.compareServer(step, now);
    if (!local) return;
    for (const row of local) if (!this.lastLocal.has(keyOf(row))) this.record(row, 'created', step, 'database');
    this.lastLocal = new Map(local.map((r) => [keyOf(r), r]));
  }

  private async compareServer(step: StepSeen, now: Map<string, GlobalRow>): Promise<void> {
    const created: ClusterObject[] = [];
    for (const [key, row] of now) {
      const was = this.last.get(key);
      if (was && was.definition === row.definition) continue;
      if (!named(step.statements, row.name) && !(row.kind === 'role' && was && /\b(current_user|current_role|session_user)\b/i.test(step.statements.join('\n')))) continue;
      const object = this.record(row, this.baseline.has(key) ? 'changed' : 'created', step, 'server');
      if (object?.change === 'created') created.push(object);
    }
    for (const [key, row] of this.last) {
      if (!now.has(key) && this.baseline.has(key) && named(step.statements, row.name)) this.record(row, 'removed', step, 'server');
    }
    this.last = now;
    if (created.length) await this.options.ledger?.created(created);
  }

  /** What the rehearsal's migrations did outside the copy's schema, in the order seen. */
  objects(): ClusterObject[] {
    return [...this.found.values()];
  }

  /** Whether cleanup() or beforeCopyDrop() has anything to drop: objects the rehearsal created on the server. */
  hasCreatedServerObjects(): boolean {
    return (['database', 'tablespace', 'role', 'subscription'] as const).some((kind) => this.created(kind).length > 0);
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
        try {
          s.cleanup = await dropSubscriptionIn(copy, s.name);
        } catch (err) {
          s.cleanup = leftMessage(err);
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
    for (const kind of ['database', 'tablespace', 'role'] as const) {
      for (const o of this.created(kind)) {
        try {
          o.cleanup = await dropServerObject(this.server, kind, o.name);
        } catch (err) {
          o.cleanup = leftMessage(err);
        }
      }
    }
    this.cleaned = true;
    // Done with: what is left is in the report, not for a sweep to retry behind its back.
    await this.options.ledger?.finish();
  }

  async close(): Promise<void> {
    if (!this.cleaned) await this.options.ledger?.abandoned(this.server).catch(() => undefined);
    await this.server.end().catch(() => undefined);
  }
}

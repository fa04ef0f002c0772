import { strongestLock } from '../sql-analysis/lock-modes.js';
import { lockModeOf, rewriteReason } from './lock-names.js';
import type { Observation } from './types.js';

/** A row of sfm_observe.events. */
export interface EventRow {
  id: number;
  kind: 'ddl' | 'rewrite' | 'drop';
  xid: string;
  command_tag: string | null;
  object_type: string | null;
  object_identity: string | null;
  relation: string | null;
  reason: number | null;
  locks: Array<{ relation: string; relkind: string; mode: string }> | null;
  scans: Record<string, number> | null;
}

const TABLE_KINDS = new Set(['r', 'p', 'm']);

/**
 * One migration's events as facts: the strongest lock per relation, rewrites,
 * full scans per command (its growth of the transaction's seq_scan counters),
 * and which of those scans validated (an ALTER TABLE that neither rewrote its
 * table nor built an index on it).
 */
export function fromEvents(migration: string, events: EventRow[]): Observation {
  const obs: Observation = { migration, method: 'event-triggers', locks: [], rewrites: [], validations: [], scans: [], drops: [], notes: [] };
  const sorted = [...events].sort((a, b) => a.id - b.id);
  const strongest = new Map<string, { mode: ReturnType<typeof lockModeOf>; during: string | null; at: { xid: string; seq: number } }>();
  let previousCommand = '';
  const indexesSoFar = new Map<string, Set<string>>();
  let rewrittenSinceLastDdl = new Set<string>();
  const pendingRewrites: Array<{ relation: string; reason: string }> = [];
  for (const e of sorted) {
    if (e.kind === 'rewrite' && e.relation) {
      rewrittenSinceLastDdl.add(e.relation);
      pendingRewrites.push({ relation: e.relation, reason: rewriteReason(e.reason ?? 0) });
      continue;
    }
    if (e.kind === 'drop' && e.object_identity) {
      const relation = e.object_type === 'table column' ? e.object_identity.split('.').slice(0, -1).join('.') : e.object_identity;
      obs.drops.push({ objectType: e.object_type ?? '', identity: e.object_identity, relation, during: e.command_tag });
      continue;
    }
    const during = `${e.command_tag ?? ''} ${e.object_identity ?? ''}`.trim();
    for (const r of pendingRewrites.splice(0)) obs.rewrites.push({ ...r, during });
    const indexes = indexesSoFar.get(e.xid) ?? new Set<string>();
    let builtIndex = e.command_tag === 'CREATE INDEX';
    for (const l of e.locks ?? []) {
      // A new index is held ACCESS EXCLUSIVE by the transaction that built it.
      const heldExclusively = l.relkind === 'i' && l.mode === 'AccessExclusiveLock';
      if (heldExclusively && !indexes.has(l.relation)) builtIndex = true;
      if (heldExclusively) indexes.add(l.relation);
      if (!TABLE_KINDS.has(l.relkind)) continue;
      const mode = lockModeOf(l.mode);
      const was = strongest.get(l.relation);
      if (!was || strongestLock([was.mode, mode]) !== was.mode) strongest.set(l.relation, { mode, during, at: { xid: e.xid, seq: e.id } });
    }
    indexesSoFar.set(e.xid, indexes);
    // One command reports a row per object it touched (a table and its sequence), all with the same locks and scans.
    const command = `${e.xid}|${JSON.stringify(e.locks)}|${JSON.stringify(e.scans)}`;
    const sameCommand = command === previousCommand;
    previousCommand = command;
    for (const [relation, count] of Object.entries(e.scans ?? {})) {
      if (count <= 0 || sameCommand) continue;
      obs.scans.push({ relation, during, at: { xid: e.xid, seq: e.id } });
      const onItself = e.command_tag === 'ALTER TABLE' && e.object_identity?.toLowerCase() === relation;
      if (onItself && !rewrittenSinceLastDdl.has(relation) && !builtIndex) obs.validations.push({ relation, during });
    }
    rewrittenSinceLastDdl = new Set();
  }
  for (const r of pendingRewrites) obs.rewrites.push({ ...r, during: null });
  obs.locks = [...strongest].map(([relation, { mode, during, at }]) => ({ relation, mode, during, at }));
  return obs;
}

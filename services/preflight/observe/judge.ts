import type { Finding } from '../report.js';
import { ruleDocPath } from '../sql-analysis/rule-catalog.js';
import { BLOCKING } from './lock-names.js';
import type { Observation, PreExisting } from './types.js';

// Rules on what the rehearsal saw, for relations that exist on the target
// and hold data there (a table the run creates is empty and cheap). Per
// migration and table, the strongest verdict wins: a rewrite, else a
// validating scan, else a blocking lock held while a table was read in full.
// A strong lock on its own (a catalog-only ALTER) is not reported: it is
// brief, and the service applies with lock_timeout.

export interface ObservedFinding extends Finding {
  /** The relation it is about, to match it with a static finding on the same one. */
  relation: string;
}

const METHOD: Readonly<Record<Observation['method'], string>> = {
  'event-triggers': 'seen by event triggers on the rehearsal copy',
  sampling: 'seen by sampling pg_locks and relfilenodes on the rehearsal copy',
};

function size(p: PreExisting): string {
  if (p.rows > 0) return `about ${Math.round(p.rows).toLocaleString('en-US')} rows on the target`;
  const mb = p.bytes / (1024 * 1024);
  return `${mb >= 1 ? `${mb.toFixed(1)} MB` : `${Math.max(1, Math.round(p.bytes / 1024))} kB`} of data on the target`;
}

export function judgeObserved(observations: Observation[], preExisting: ReadonlyMap<string, PreExisting>): ObservedFinding[] {
  const out: ObservedFinding[] = [];
  const holding = (relation: string) => {
    const p = preExisting.get(relation);
    return p !== undefined && (p.rows > 0 || p.bytes > 0) ? p : undefined;
  };
  for (const obs of observations) {
    const how = METHOD[obs.method];
    const add = (rule: string, relation: string, statement: string | null, message: string) =>
      out.push({ rule, severity: 'error', migration: obs.migration, statement, relation, acknowledged: null, message: `${message} (${how}) See ${ruleDocPath(rule)}.` });
    const lockOn = (relation: string) => obs.locks.find((l) => l.relation === relation)?.mode ?? 'ACCESS EXCLUSIVE';
    const decided = new Set<string>();
    for (const r of obs.rewrites) {
      const p = holding(r.relation);
      if (!p || decided.has(r.relation)) continue;
      decided.add(r.relation);
      add('observed-table-rewrite', r.relation, r.during,
        `Migration ${obs.migration} rewrote ${r.relation} (${size(p)}): ${r.reason}${r.during ? `, in ${r.during}` : ''}. ` +
          `Every row is copied while ${lockOn(r.relation)} blocks all reads and writes of it. Add a new column or table and backfill it in batches instead.`);
    }
    for (const v of obs.validations) {
      const p = holding(v.relation);
      if (!p || decided.has(v.relation)) continue;
      decided.add(v.relation);
      add('observed-validation-scan', v.relation, v.during,
        `Migration ${obs.migration} read every row of ${v.relation} (${size(p)}) to validate ${v.during} while holding ${lockOn(v.relation)} on it. ` +
          'Add the constraint NOT VALID and VALIDATE CONSTRAINT in a separate migration (for NOT NULL: a validated CHECK first).');
    }
    const fullReads = obs.scans.filter((s) => holding(s.relation));
    for (const l of obs.locks) {
      const p = holding(l.relation);
      if (!p || decided.has(l.relation) || !BLOCKING.has(l.mode)) continue;
      // Read while the lock was held: in its transaction, at or after the command that took it.
      const whileHeld = fullReads.filter((s) => s.at.xid === l.at.xid && s.at.seq >= l.at.seq);
      const read = whileHeld.find((s) => s.relation === l.relation) ?? whileHeld[0];
      if (!read) continue;
      decided.add(l.relation);
      const blocks = l.mode === 'ACCESS EXCLUSIVE' ? 'all reads and writes' : 'all writes';
      const what = read.relation === l.relation ? `every row of it` : `every row of ${read.relation}`;
      add('observed-blocking-lock', l.relation, read.during ?? l.during,
        `Migration ${obs.migration} held ${l.mode} on ${l.relation} (${size(p)}), blocking ${blocks}, while it read ${what}` +
          `${read.during ? ` (${read.during})` : ''}. Use the CONCURRENTLY form, or split the work so the lock is not held during the scan.`);
    }
    for (const d of obs.drops) {
      const p = holding(d.relation);
      if (!p) continue;
      add('observed-dropped-data', d.relation, d.during ? `${d.during} ${d.identity}` : d.identity,
        `Migration ${obs.migration} dropped ${d.objectType} ${d.identity}, and ${d.relation} holds ${size(p).replace(/ on the target$/, '')} on the target; ` +
          'a rollback cannot bring the data back. Stop using it in a release first, keep a verified backup, and acknowledge the drop with the reason.');
    }
  }
  return out;
}

/**
 * Observed findings next to the static ones: where a static finding of the
 * same migration already names the relation, the observation confirms it (its
 * message says so, and its acknowledgement covers both); otherwise the
 * observed finding stands on its own.
 */
export function mergeObserved(findings: Finding[], observed: ObservedFinding[]): Finding[] {
  const merged = findings.map((f) => ({ ...f }));
  for (const { relation, ...o } of observed) {
    const match = merged.find((f) => f.migration === o.migration && !f.rule.startsWith('observed-') && f.message.includes(relation));
    if (match) match.message = `${match.message} Confirmed in the rehearsal (${o.rule}): ${o.message.replace(/ See docs\/rules\/[a-z-]+\.md\.$/, '')}`;
    else merged.push(o);
  }
  return merged;
}

import { createHash } from 'node:crypto';
import type { Finding } from './report.js';

// A finding's id names it across re-runs of preflight for the same digest, so
// an acknowledgement given through the API applies to the same finding in
// the next report: sha256 over what the finding is about (rule, migration,
// statement with its whitespace collapsed) and which of its kind it is
// (occurrence index), never over its message, whose row counts and timings
// change from run to run.

const normalise = (statement: string | null) => (statement ?? '').replace(/\s+/g, ' ').trim();

export function withFindingIds<T extends Finding>(findings: T[]): T[] {
  const seen = new Map<string, number>();
  return findings.map((f) => {
    const key = [f.rule, f.migration ?? '', normalise(f.statement)].join('\u0000');
    const occurrence = seen.get(key) ?? 0;
    seen.set(key, occurrence + 1);
    const id = createHash('sha256').update(`${key}\u0000${occurrence}`).digest('hex').slice(0, 16);
    // First in the object, so a reader of the JSON sees what to acknowledge.
    return { id, ...f };
  });
}

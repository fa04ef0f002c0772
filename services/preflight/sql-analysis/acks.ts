// `-- lint-ack: <rule-id> <reason>` in SQL, `// lint-ack: ...` in JS
// migrations. The reason is mandatory: an acknowledgement is a record of why
// the risk was accepted, for whoever reads the report later.
// The reason runs to the end of the line, or to the end of the block comment
// or one-line `pgm.sql('...')` string the ack sits in.
const ACK = /(?:--|\/\/)\s*lint-ack:\s*([a-z0-9-]+)[ \t]*(.*?)\s*(?:\*\/|['"`]\s*\)|$)/i;

interface Acknowledgeable {
  rule: string;
  severity: string;
  migration: string | null;
  acknowledged: { reason: string } | null;
}

/** Rule id → reason, from a migration file's text; acks without a reason are ignored. */
export function parseAcks(source: string): Map<string, string> {
  const acks = new Map<string, string>();
  for (const line of source.split(/\r?\n/)) {
    const match = ACK.exec(line);
    const rule = match?.[1]?.toLowerCase();
    const reason = match?.[2]?.trim();
    if (rule && reason && !acks.has(rule)) acks.set(rule, reason);
  }
  return acks;
}

/** An acknowledged finding stays in the report but as a warning, so it no longer fails preflight. */
export function applyAcks<T extends Acknowledgeable>(findings: T[], acks: ReadonlyMap<string, string>): T[] {
  return findings.map((f) => {
    const reason = acks.get(f.rule);
    return reason === undefined ? f : { ...f, severity: 'warning', acknowledged: { reason } };
  });
}

/**
 * For findings that did not come from the linter (e.g. a failed rehearsal):
 * applies the acks in each finding's own migration file, keyed by migration name.
 */
export function applyAcknowledgements<T extends Acknowledgeable>(findings: T[], sources: ReadonlyMap<string, string>): T[] {
  const parsed = new Map<string, Map<string, string>>();
  return findings.flatMap((f) => {
    const source = f.migration === null ? undefined : sources.get(f.migration);
    if (f.migration === null || source === undefined) return [f];
    let acks = parsed.get(f.migration);
    if (!acks) parsed.set(f.migration, (acks = parseAcks(source)));
    return applyAcks([f], acks);
  });
}

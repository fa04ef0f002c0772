import type { RehearsalResult } from './types.js';

// The rehearsal check's detail and the report's notes: what ran, what did
// not, and why, in words.

function phaseLine(rehearsal: RehearsalResult, phase: 'up' | 'down' | 'up-again', total: number): string {
  const label = phase === 'up' ? 'up' : phase === 'down' ? 'down' : 'up again';
  const steps = rehearsal.steps.filter((s) => s.phase === phase);
  if (steps.length === 0) return `${label}: not run`;
  const ok = steps.filter((s) => s.ok).length;
  const stop = steps.find((s) => !s.ok);
  const why = stop ? `, stopped at ${stop.migration} (${stop.explainedBy === stop.migration && phase === 'down' ? 'no down' : stop.explainedBy ? `after the irreversible down of ${stop.explainedBy}` : 'failed'})` : '';
  return `${label}: ${ok} of ${total}${why}`;
}

/** "5 migration(s) — up: 1 of 5, stopped at B (failed); down: 1 of 1; up again: 1 of 1; not rehearsed: C, D, E (read statically)". */
export function rehearsalDetail(rehearsal: RehearsalResult, pending: number): string {
  const upOk = rehearsal.steps.filter((s) => s.phase === 'up' && s.ok).length;
  const parts = [
    phaseLine(rehearsal, 'up', pending),
    phaseLine(rehearsal, 'down', upOk),
    phaseLine(rehearsal, 'up-again', rehearsal.steps.filter((s) => s.phase === 'down' && s.ok).length),
  ];
  const verdicts = Object.values(rehearsal.reversibility ?? {});
  const irreversible = verdicts.filter((v) => v === 'irreversible' || v === 'no-down').length;
  if (irreversible) parts.push(`${irreversible} down(s) do not restore the schema`);
  const rest = rehearsal.notRehearsed ?? [];
  if (rest.length) parts.push(`not rehearsed: ${rest.length} (linted from their files)`);
  return `${pending} migration(s) on a copy seeded by ${rehearsal.seededFrom}, ${rehearsal.durationMs} ms. ${parts.join('; ')}.`;
}

export function rehearsalNotes(rehearsal: RehearsalResult): string[] {
  const notes: string[] = [];
  const rest = rehearsal.notRehearsed ?? [];
  if (rest.length) {
    const stop = rehearsal.steps.find((s) => s.phase === 'up' && !s.ok)?.migration ?? 'a failed migration';
    const unread = rest.filter((n) => !rehearsal.staticStatements?.[n]?.complete);
    notes.push(`Not rehearsed, the rehearsal stopped at ${stop}: ${rest.join(', ')}. Their SQL was linted from the files` +
      (unread.length ? `; not all of it could be read (builder calls or computed strings) for ${unread.join(', ')}` : '') + '.');
  }
  const unchecked = Object.entries(rehearsal.reversibility ?? {}).filter(([, v]) => v === 'not-checked').map(([n]) => n);
  if (unchecked.length && !rest.length) notes.push(`Reversibility not checked (their down never ran on the copy): ${unchecked.join(', ')}.`);
  if (rehearsal.server?.sameAsTarget === null) notes.push(`Whether the rehearsal ran on the target's own server ${rehearsal.server.method}.`);
  return notes;
}

import type { RehearsalResult } from './types.js';

// The rehearsal check's detail and the report's notes: what ran, what did
// not, and why, in words.

function phaseLine(rehearsal: RehearsalResult, phase: 'up' | 'down' | 'up-again', total: number): string {
  const label = phase === 'up' ? 'up' : phase === 'down' ? 'down' : 'up again';
  const steps = rehearsal.steps.filter((s) => s.phase === phase);
  if (steps.length === 0) return `${label} not run`;
  const stop = steps.find((s) => !s.ok);
  const why = !stop ? '' : stop.explainedBy === stop.migration && phase === 'down' ? 'no down'
    : stop.explainedBy ? `after the irreversible down of ${stop.explainedBy}` : 'failed';
  return `${label} ${steps.filter((s) => s.ok).length}/${total}${stop ? ` (stopped at ${stop.migration}: ${why})` : ''}`;
}

/** "up 1/5 (stopped at B: failed), down 1/1, up again 1/1; not rehearsed: 3 (...); on a copy seeded by pg_dump in 812 ms." */
export function rehearsalDetail(rehearsal: RehearsalResult, pending: number): string {
  const upOk = rehearsal.steps.filter((s) => s.phase === 'up' && s.ok).length;
  const phases = [
    phaseLine(rehearsal, 'up', pending),
    phaseLine(rehearsal, 'down', upOk),
    phaseLine(rehearsal, 'up-again', rehearsal.steps.filter((s) => s.phase === 'down' && s.ok).length),
  ].join(', ');
  const more: string[] = [];
  const irreversible = Object.values(rehearsal.reversibility ?? {}).filter((v) => v === 'irreversible' || v === 'no-down').length;
  if (irreversible) more.push(`${irreversible} down(s) do not restore the schema`);
  const rest = rehearsal.notRehearsed ?? [];
  if (rest.length) more.push(`not rehearsed: ${rest.length} (linted from their files)`);
  const copy = rehearsal.seededFrom === 'empty' ? 'on an empty copy (the target has no history and no schema objects: nothing to dump)' : `on a copy seeded by ${rehearsal.seededFrom}`;
  return `${phases}${more.length ? `; ${more.join('; ')}` : ''}; ${copy} in ${rehearsal.durationMs} ms.`;
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

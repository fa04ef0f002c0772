// Human output: compact aligned blocks and tables. Machine output (--json) never
// comes through here.

// The API's own types (type-only: nothing of the service is loaded at run time).
import type { AuditEvent } from '../../services/audit.js';
import type { ApiRun as Run } from '../../services/runs/present.js';

export type { AuditEvent, Run };

/** ISO time to the second, UTC: readable and still sortable. */
export function time(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function truncate(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** Indents every non-empty line. */
export function indent(text: string, by = '  '): string {
  return text.replace(/^(?=.)/gm, by);
}

export function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function block(pairs: Array<[string, string | null | undefined]>): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== null && p[1] !== '');
  const width = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(width)}  ${v.replace(/\n/g, `\n${' '.repeat(width + 2)}`)}`).join('\n') + '\n';
}

export function runError(error: Run['error']): string | null {
  if (!error) return null;
  const where = [error.migration && `migration ${error.migration}`, error.sqlState && `SQLSTATE ${error.sqlState}`].filter(Boolean).join(', ');
  return `${error.code}: ${error.message}${where ? ` (${where})` : ''}`;
}

export function approvalsLine(run: Run): string {
  const given = run.approvals
    .filter((a) => a.current !== false)
    .map((a) => `${a.role} ${a.decision === 'approve' ? 'approved' : 'rejected'} by ${a.subject}${a.comment ? ` ("${truncate(a.comment, 60)}")` : ''}`);
  return [`needs ${run.requiredApprovals.join(' + ') || 'none'}`, ...given].join('; ');
}

export function showRun(run: Run): string {
  const schedule = run.schedule.mode === 'at' && run.schedule.at ? `at ${time(run.schedule.at)}` : run.schedule.mode;
  const migrations = run.migrations.length
    ? `${run.migrations.length}: ${run.migrations.map((m) => m.name).join(', ')}`
    : 'none pending';
  const backup = run.backup
    ? `${run.backup.id} (${run.backup.method}${run.backup.sizeBytes !== null ? `, ${run.backup.sizeBytes} bytes` : ''}${run.backup.verifiedAt ? `, verified ${time(run.backup.verifiedAt)}` : ', not verified'})`
    : null;
  return block([
    ['run', run.id],
    ['environment', run.environment],
    ['status', run.status],
    ['description', run.description],
    ['ticket', run.ticket],
    ['to', run.to ?? null],
    ['requested', `by ${run.requestedBy} at ${time(run.createdAt)}`],
    ['updated', time(run.updatedAt)],
    ['schedule', run.scheduledFor ? `${schedule}, due ${time(run.scheduledFor)}` : schedule],
    ['migrations', migrations],
    ['digest', run.digest ? run.digest.slice(0, 16) : null],
    ['approvals', approvalsLine(run)],
    ['backup', backup],
    ['error', runError(run.error)],
  ]);
}

export function runRows(runs: Run[]): string {
  return table(
    ['ID', 'ENVIRONMENT', 'STATUS', 'CREATED', 'BY', 'DESCRIPTION'],
    runs.map((r) => [r.id, r.environment, r.status, time(r.createdAt), r.requestedBy, truncate(r.description, 50)]),
  );
}

/** The migration an event is about, when it names one. */
export function eventSubject(event: Pick<AuditEvent, 'details'>): string | null {
  const d = event.details ?? {};
  for (const key of ['name', 'migration']) {
    const value = d[key];
    if (typeof value === 'string' && value) return value;
  }
  return null;
}

export function eventRows(events: AuditEvent[]): string {
  return table(
    ['AT', 'TYPE', 'ACTOR', 'STATUS', 'DETAIL'],
    events.map((e) => [
      time(e.at),
      e.type,
      e.actor,
      e.from || e.to ? `${e.from ?? '-'} -> ${e.to ?? '-'}` : '',
      truncate(eventSubject(e) ?? detailSummary(e.details), 70),
    ]),
  );
}

function detailSummary(details: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const key of ['role', 'mode', 'reason', 'comment', 'code', 'message', 'id']) {
    const value = details[key];
    if (typeof value === 'string' && value) parts.push(`${key}=${value}`);
  }
  return parts.join(' ');
}

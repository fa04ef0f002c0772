import type { OutboxRow } from '../../database/sql/notifications.js';

/** What a run's transition is announced as: one sentence, then the body each kind of target gets. */
export interface Announcement {
  text: string;
  /** The generic webhook body. */
  json: WebhookBody;
}

export interface WebhookBody {
  event: string;
  eventId: string;
  status: string;
  previousStatus: string | null;
  actor: string;
  at: string;
  environment: string;
  text: string;
  run: {
    id: string;
    environment: string;
    description: string;
    ticket: string | null;
    requestedBy: string;
    scheduledFor: string | null;
    eta: string | null;
    error: { code: string | null; message: string | null } | null;
  };
  details: Record<string, unknown>;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function duration(ms: number): string {
  if (ms < 60_000) return `${Math.max(1, Math.round(ms / 1000))}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.floor(ms / 3_600_000)}h${String(Math.round((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
}

/** When a scheduled run is expected to be done: its start plus the preflight's estimate. */
function etaOf(row: OutboxRow): string | null {
  const at = str(row.details.scheduledFor) ?? row.scheduled_for?.toISOString() ?? null;
  const estimate = num(row.details.estimatedMs);
  if (!at || estimate === null) return null;
  return new Date(new Date(at).getTime() + estimate).toISOString();
}

function sentence(row: OutboxRow, eta: string | null): string {
  const d = row.details;
  const comment = str(d.comment) ? `: "${str(d.comment)}"` : '';
  const reason = str(d.reason) ? ` (${str(d.reason)})` : '';
  const failure = row.error?.message ? `: ${row.error.message}` : '';
  switch (row.to_status) {
    case 'created': {
      const count = Array.isArray(d.migrations) ? d.migrations.length : null;
      return `created by ${row.actor}${count === null ? '' : ` with ${count} pending migration${count === 1 ? '' : 's'}`}; preflight starts now.`;
    }
    case 'awaiting_approval': {
      const estimate = num(d.estimatedMs);
      return `passed preflight${estimate === null ? '' : ` (estimated apply time ${duration(estimate)})`} and awaits approval.`;
    }
    case 'preflight_failed': return `failed preflight${failure}.`;
    case 'rejected': return `was rejected by ${row.actor}${comment}.`;
    case 'approved': return `is approved (last approval by ${row.actor}).`;
    case 'scheduled': {
      const at = str(d.scheduledFor) ?? row.scheduled_for?.toISOString() ?? 'an unknown time';
      const window = d.window as { start?: string; end?: string } | null | undefined;
      const inWindow = window?.start && window.end ? ` in the window ${window.start} – ${window.end}` : '';
      return `is scheduled to apply at ${at}${inWindow}${eta ? `; ETA ${eta}` : ''}.`;
    }
    case 'applying': return `apply started (by ${row.actor}).`;
    case 'verifying': return 'migrations applied; verifying.';
    case 'monitoring': return 'verification passed; watching ETL health.';
    case 'succeeded': return 'succeeded.';
    case 'failed': return `FAILED${failure}.`;
    case 'verification_failed': return `FAILED verification${failure}.`;
    case 'degraded': return `is DEGRADED after the apply${failure}.`;
    case 'interrupted': return `was INTERRUPTED (the applying process stopped)${failure}; an operator must close it (if nothing landed), re-apply or roll back.`;
    case 'cancelled': return `was cancelled by ${row.actor}${reason}.`;
    case 'rolling_back': return `is being rolled back (down migrations, by ${row.actor}).`;
    case 'rolled_back': return 'was rolled back.';
    case 'restoring': return `is being restored from its backup (by ${row.actor}).`;
    case 'restored': return 'was restored from its backup.';
    default: return `is now ${row.to_status}.`;
  }
}

export function announce(row: OutboxRow): Announcement {
  const eta = row.to_status === 'scheduled' ? etaOf(row) : null;
  const ticket = row.ticket ? ` (${row.ticket})` : '';
  const text = `[${row.environment}] Run ${row.run_id.slice(0, 8)} "${row.description}"${ticket} ${sentence(row, eta)}`;
  return {
    text,
    json: {
      event: row.type,
      eventId: String(row.event_id),
      status: row.to_status,
      previousStatus: row.from_status,
      actor: row.actor,
      at: row.created_at.toISOString(),
      environment: row.environment,
      text,
      run: {
        id: row.run_id,
        environment: row.environment,
        description: row.description,
        ticket: row.ticket,
        requestedBy: row.requested_by,
        scheduledFor: str(row.details.scheduledFor) ?? row.scheduled_for?.toISOString() ?? null,
        eta,
        error: row.error ? { code: row.error.code ?? null, message: row.error.message ?? null } : null,
      },
      details: row.details,
    },
  };
}

/** The body a target of `kind` receives. */
export function bodyFor(kind: 'slack' | 'webhook', announcement: Announcement): unknown {
  return kind === 'slack' ? { text: announcement.text } : announcement.json;
}

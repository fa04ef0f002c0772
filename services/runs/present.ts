import type { RunRow } from '../../database/sql/runs.js';

export interface ApiRun {
  id: string;
  environment: string;
  status: string;
  description: string;
  ticket: string | null;
  to: string | null;
  requestedBy: string;
  createdAt: string;
  updatedAt: string;
  schedule: { mode: string; at?: string };
  scheduledFor: string | null;
  migrations: Array<{ name: string; sha256: string }>;
  digest: string;
  requiredApprovals: string[];
  approvals: Array<{ subject: string; role: string; decision: string; comment: string; digest: string; current: boolean; at: string }>;
  backup: { id: string; method: string; sizeBytes: number | null; sha256: string | null; verifiedAt: string | null } | null;
  error: RunRow['error'];
  progress: NonNullable<RunRow['progress']> | null;
  /** The post-apply watch: null before it started; verdict null while it runs. */
  watch: { startedAt: string; endsAt: string; verdict: 'healthy' | 'degraded' | null; endedAt: string | null; endedEarly: boolean } | null;
}

function presentWatch(row: RunRow): ApiRun['watch'] {
  // The view query selects apply_state->'watch'; the services' full rows carry apply_state itself.
  const watch = row.watch ?? (row as RunRow & { apply_state?: { watch?: RunRow['watch'] } }).apply_state?.watch ?? null;
  if (!watch?.window) return null;
  return {
    startedAt: watch.window.startedAt, endsAt: watch.window.endsAt, verdict: watch.verdict ?? null,
    endedAt: watch.endedAt ?? null, endedEarly: watch.endedEarly === true,
  };
}

const iso = (value: string | Date | null): string | null => (value === null ? null : new Date(value).toISOString());

/** The run as API.md defines it. */
export function presentRun(row: RunRow): ApiRun {
  return {
    id: row.id,
    environment: row.environment,
    status: row.status,
    description: row.description,
    ticket: row.ticket,
    to: row.target_to,
    requestedBy: row.requested_by,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    schedule: row.schedule,
    scheduledFor: iso(row.scheduled_for),
    migrations: row.migrations,
    digest: row.digest,
    requiredApprovals: row.required_approvals,
    approvals: row.approvals.map((a) => ({
      subject: a.subject,
      role: a.role,
      decision: a.decision,
      comment: a.comment,
      digest: a.digest,
      current: a.digest === row.digest,
      at: iso(a.at)!,
    })),
    backup: row.backup && {
      id: row.backup.id,
      method: row.backup.method,
      sizeBytes: row.backup.size_bytes === null ? null : Number(row.backup.size_bytes),
      sha256: row.backup.sha256,
      verifiedAt: iso(row.backup.verified_at),
    },
    error: row.error,
    progress: row.progress ?? null,
    watch: presentWatch(row),
  };
}

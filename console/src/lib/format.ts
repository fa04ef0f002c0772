// Times are shown in the reader's zone, with the UTC instant in the title.

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 90) return `${s.toFixed(1)} s`;
  const m = s / 60;
  return m < 90 ? `${m.toFixed(1)} min` : `${(m / 60).toFixed(1)} h`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : n.toLocaleString();
}

export const GOOD = ['succeeded', 'passed', 'pass', 'approved', 'scheduled', 'rolled_back', 'restored'];
export const BAD = ['failed', 'preflight_failed', 'rejected', 'verification_failed', 'degraded', 'interrupted', 'fail', 'error'];
export const BUSY = ['preflight_running', 'applying', 'verifying', 'monitoring', 'rolling_back', 'restoring', 'running'];

export function tone(status: string): 'good' | 'bad' | 'busy' | 'neutral' {
  if (GOOD.includes(status)) return 'good';
  if (BAD.includes(status)) return 'bad';
  if (BUSY.includes(status)) return 'busy';
  return 'neutral';
}

export const RUN_STATUSES = [
  'created', 'preflight_running', 'preflight_failed', 'awaiting_approval', 'rejected', 'approved', 'scheduled',
  'applying', 'verifying', 'monitoring', 'succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted',
  'cancelled', 'rolling_back', 'rolled_back', 'restoring', 'restored',
];

export const label = (status: string) => status.replace(/_/g, ' ');

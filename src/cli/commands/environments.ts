import type { Command } from 'commander';
import { action, enc, type Runtime } from '../context.js';
import { table, time } from '../format.js';
import { intParser } from '../values.js';

interface Span {
  start: string;
  end: string;
}

interface Environment {
  name: string;
  configured: boolean;
  reachable: boolean;
  error: string | null;
  applied: unknown[];
  pending: Array<{ name: string }>;
  requiredApprovals: string[];
  activeRun: { id: string; status: string } | null;
  activeFreeze: { to: string; reason: string } | null;
  windowOpen: boolean;
  nextWindow: Span | null;
  windows: unknown[];
}

function windowState(e: Environment): string {
  if (e.activeFreeze) return `frozen until ${time(e.activeFreeze.to)} (${e.activeFreeze.reason})`;
  if (e.windows.length === 0) return 'any time';
  if (e.windowOpen) return 'open now';
  return e.nextWindow ? `next ${time(e.nextWindow.start)}` : 'none ahead';
}

export function environmentCommands(rt: Runtime, parent: Command): void {
  parent
    .command('environments')
    .description('per environment: reachability, applied and pending migrations, approvals, windows, active run')
    .action(action(rt, () => async (s) => {
      const envs = await s.client.get<Environment[]>('/v1/environments');
      s.print(envs, () => table(
        ['NAME', 'STATE', 'APPLIED', 'PENDING', 'APPROVALS', 'WINDOW', 'ACTIVE RUN'],
        envs.map((e) => [
          e.name,
          !e.configured ? 'not configured' : e.reachable ? 'reachable' : `unreachable${e.error ? ` (${e.error})` : ''}`,
          String(e.applied.length),
          String(e.pending.length),
          e.requiredApprovals.join('+'),
          windowState(e),
          e.activeRun ? `${e.activeRun.id} ${e.activeRun.status}` : '-',
        ]),
      ) || 'no environments\n');
    }));

  parent
    .command('windows')
    .description('the next maintenance windows of an environment (freezes cut out)')
    .argument('<environment>', 'environment name')
    .option('--count <n>', 'how many (1-100, default 5)', intParser(rt, 1, 100))
    .action(action(rt, (name: string, opts: { count?: number }) => async (s) => {
      const spans = await s.client.get<Span[]>(`/v1/environments/${enc(name)}/windows`, { count: opts.count });
      s.print(spans, () => spans.length
        ? table(['START', 'END', 'MINUTES'], spans.map((w) => [time(w.start), time(w.end), String(Math.round((Date.parse(w.end) - Date.parse(w.start)) / 60_000))]))
        : `${name} has no maintenance windows: an apply may start any time outside a freeze\n`);
    }));
}

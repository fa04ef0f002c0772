import { Command } from 'commander';
import { action, enc, type Runtime } from '../context.js';
import { UsageError } from '../errors.js';
import { table, time, truncate } from '../format.js';
import { textParser } from '../values.js';

interface WindowOverride {
  id: string;
  status: string;
  requestedBy: string;
  reason: string;
  decidedBy: string | null;
  createdAt: string;
}

const line = (o: WindowOverride) => `window override ${o.id} status=${o.status} asked by ${o.requestedBy}${o.decidedBy ? `, decided by ${o.decidedBy}` : ''}: ${o.reason}`;

/** `sfm runs override <id>`: an sre decides on the window override an operator asked for (sfm runs apply --override-window). */
export function overrideCommand(rt: Runtime, runs: Command): void {
  runs
    .command('override')
    .description('window overrides: list them (--status), or, as an sre other than the operator who asked, approve (starts the apply now) or reject')
    .argument('<id>', 'run id')
    .option('--approve', 'sre: approve the open override; the apply starts at once')
    .option('--reject', 'sre: reject the open override (needs --comment)')
    .option('--comment <text>', 'a note kept with the decision', textParser(2000))
    .option('--status', 'list the window overrides of the run')
    .action(action(rt, (id: string, opts: { approve?: boolean; reject?: boolean; comment?: string; status?: boolean }) => {
      const chosen = [opts.approve && '--approve', opts.reject && '--reject', opts.status && '--status'].filter(Boolean);
      if (chosen.length !== 1) throw new UsageError(chosen.length ? `${chosen.join(' and ')} exclude each other` : 'say what to do: --approve, --reject or --status');
      if (opts.status) {
        return async (s) => {
          const list = await s.client.get<WindowOverride[]>(`/v1/runs/${enc(id)}/overrides`);
          s.print(list, () => list.length
            ? table(['ID', 'STATUS', 'ASKED', 'BY', 'DECIDED BY', 'REASON'], list.map((o) => [o.id, o.status, time(o.createdAt), o.requestedBy, o.decidedBy ?? '-', truncate(o.reason, 50)]))
            : `run ${id} has no window overrides\n`);
        };
      }
      if (opts.reject && !opts.comment?.trim()) throw new UsageError('--reject needs --comment <text>');
      const body = { decision: opts.approve ? 'approve' : 'reject', ...(opts.comment !== undefined && { comment: opts.comment }) };
      return async (s) => {
        const o = await s.client.post<WindowOverride>(`/v1/runs/${enc(id)}/overrides/approvals`, body);
        s.print(o, () => `${line(o)}\n${o.status === 'approved' ? `The apply started. Follow it: sfm runs wait ${id}\n` : ''}`);
      };
    }));
}

import { indent, table } from './format.js';

// `sfm runs rollback --plan` and the plan shown with a request: what a
// rollback or restore would do, as text for the person who approves it.

interface AtRisk { kind: string; migration: string | null; table: string; column: string | null; exists: boolean; rows: number | null; rowsExact: boolean; bytes: number | null; note: string | null }

export interface RollbackPlan {
  runId: string;
  mode: string;
  digest: string;
  blockers: string[];
  window: { hasWindows: boolean; open: boolean; next: { start: string } | null };
  down: { migrations: Array<{ name: string; reversible: boolean; sql: string[] | null }>; drops: AtRisk[] } | null;
  restore: {
    backup: { id: string; createdAt: string; ageSeconds: number };
    writesSinceBackup: { known: boolean; tables: Array<{ table: string; inserted: number; updated: number; deleted: number }>; total: { inserted: number; updated: number; deleted: number }; note: string | null };
    tablesDropped: AtRisk[];
  } | null;
  notes: string[];
}

const rows = (r: AtRisk) => (r.rows === null ? 'rows unknown' : `${r.rowsExact ? '' : 'more than '}${r.rows} row(s)`);
const bytes = (n: number | null) => (n === null ? '' : `, ${n} bytes`);

function risks(list: AtRisk[]): string {
  if (list.length === 0) return '  nothing\n';
  return indent(table(['KIND', 'WHAT', 'AT RISK', 'BY'], list.map((r) => [
    r.kind, r.column ? `${r.table}.${r.column}` : r.table, r.exists ? `${rows(r)}${bytes(r.bytes)}` : 'does not exist', r.migration ?? '-',
  ])));
}

export function planText(plan: RollbackPlan): string {
  let out = `${plan.mode} plan of run ${plan.runId}, digest ${plan.digest}\n`;
  for (const b of plan.blockers) out += `blocked: ${b}\n`;
  out += plan.window.hasWindows
    ? `window: ${plan.window.open ? 'open now' : `closed${plan.window.next ? `, next opens ${plan.window.next.start}` : ''}`}\n`
    : 'window: none configured (any time)\n';
  if (plan.down) {
    out += 'down migrations, in the order they run:\n';
    for (const m of plan.down.migrations) {
      out += `  ${m.name} (${m.reversible ? 'reversible' : 'NOT reversible'})\n`;
      out += m.sql ? indent(m.sql.join(';\n') + '\n', '      ') : '      (down SQL not captured)\n';
    }
    out += 'dropped, with what they hold now:\n' + risks(plan.down.drops);
  }
  if (plan.restore) {
    const r = plan.restore;
    out += `backup ${r.backup.id}, taken ${r.backup.createdAt} (${r.backup.ageSeconds} s ago)\n`;
    const w = r.writesSinceBackup;
    if (!w.known) out += `writes since the backup: unknown${w.note ? ` (${w.note})` : ''}\n`;
    else {
      out += `writes since the backup, lost by the restore: ${w.total.inserted} inserted, ${w.total.updated} updated, ${w.total.deleted} deleted\n`;
      if (w.tables.length) out += indent(table(['TABLE', 'INSERTED', 'UPDATED', 'DELETED'], w.tables.map((t) => [t.table, String(t.inserted), String(t.updated), String(t.deleted)])));
    }
    out += 'tables not in the backup, dropped by the restore:\n' + risks(r.tablesDropped);
  }
  for (const n of plan.notes) out += `note: ${n}\n`;
  return out;
}

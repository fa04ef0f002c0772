import { arr, flag, nodesOf, rec, relationName, str, type AstNode } from './ast.js';
import { combine, effect, type Effect } from './effect.js';
import { columnConstraintTypes, columnDefault } from './volatility.js';
import type { LockMode } from './types.js';

// Lock levels from AlterTableGetLockLevel() in PostgreSQL 15's tablecmds.c;
// every subcommand not listed takes ACCESS EXCLUSIVE.
const SUBCOMMAND_LOCKS: Readonly<Record<string, LockMode>> = {
  AT_SetStatistics: 'SHARE UPDATE EXCLUSIVE',
  AT_SetOptions: 'SHARE UPDATE EXCLUSIVE',
  AT_ResetOptions: 'SHARE UPDATE EXCLUSIVE',
  AT_ClusterOn: 'SHARE UPDATE EXCLUSIVE',
  AT_DropCluster: 'SHARE UPDATE EXCLUSIVE',
  AT_SetRelOptions: 'SHARE UPDATE EXCLUSIVE',
  AT_ResetRelOptions: 'SHARE UPDATE EXCLUSIVE',
  AT_ReplaceRelOptions: 'SHARE UPDATE EXCLUSIVE',
  AT_ValidateConstraint: 'SHARE UPDATE EXCLUSIVE',
  AT_AttachPartition: 'SHARE UPDATE EXCLUSIVE',
  AT_DetachPartitionFinalize: 'SHARE UPDATE EXCLUSIVE',
  AT_EnableTrig: 'SHARE ROW EXCLUSIVE',
  AT_EnableAlwaysTrig: 'SHARE ROW EXCLUSIVE',
  AT_EnableReplicaTrig: 'SHARE ROW EXCLUSIVE',
  AT_EnableTrigAll: 'SHARE ROW EXCLUSIVE',
  AT_EnableTrigUser: 'SHARE ROW EXCLUSIVE',
  AT_DisableTrig: 'SHARE ROW EXCLUSIVE',
  AT_DisableTrigAll: 'SHARE ROW EXCLUSIVE',
  AT_DisableTrigUser: 'SHARE ROW EXCLUSIVE',
  AT_AlterConstraint: 'SHARE ROW EXCLUSIVE',
};

const REWRITING_SUBCOMMANDS = new Set(['AT_AlterColumnType', 'AT_SetTableSpace', 'AT_SetLogged', 'AT_SetUnLogged', 'AT_SetAccessMethod']);

/** ADD CONSTRAINT: foreign keys lock both tables less strongly; unique keys build an index. */
function addConstraint(table: string | undefined, constraint: AstNode | undefined): Effect {
  const contype = str(constraint, 'contype');
  const validates = !flag(constraint, 'skip_validation');
  if (contype === 'CONSTR_FOREIGN') {
    return effect('SHARE ROW EXCLUSIVE', [table, relationName(rec(constraint, 'pktable'))], { scansTable: validates });
  }
  if (contype === 'CONSTR_CHECK') return effect('ACCESS EXCLUSIVE', [table], { scansTable: validates });
  if (contype === 'CONSTR_PRIMARY' || contype === 'CONSTR_UNIQUE' || contype === 'CONSTR_EXCLUSION') {
    return effect('ACCESS EXCLUSIVE', [table], { buildsIndex: str(constraint, 'indexname') === undefined });
  }
  return effect('ACCESS EXCLUSIVE', [table]);
}

function addColumn(table: string | undefined, columnDef: AstNode | undefined): Effect {
  if (!columnDef) return effect('ACCESS EXCLUSIVE', [table]);
  const types = columnConstraintTypes(columnDef);
  const value = columnDefault(columnDef).kind;
  const referenced = arr(columnDef, 'constraints').map((c) => relationName(rec(rec(c, 'Constraint'), 'pktable')));
  return effect('ACCESS EXCLUSIVE', [table, ...referenced], {
    rewritesTable: value === 'volatile' || value === 'unknown',
    buildsIndex: types.includes('CONSTR_UNIQUE') || types.includes('CONSTR_PRIMARY'),
    scansTable: types.includes('CONSTR_CHECK') || types.includes('CONSTR_FOREIGN'),
  });
}

function subcommand(table: string | undefined, cmd: AstNode): Effect {
  const subtype = str(cmd, 'subtype') ?? '';
  const def = rec(cmd, 'def');
  switch (subtype) {
    case 'AT_AddColumn':
      return addColumn(table, rec(def, 'ColumnDef'));
    case 'AT_AddConstraint':
      return addConstraint(table, rec(def, 'Constraint'));
    case 'AT_SetNotNull':
    case 'AT_ValidateConstraint':
      return effect(SUBCOMMAND_LOCKS[subtype] ?? 'ACCESS EXCLUSIVE', [table], { scansTable: true });
    case 'AT_AttachPartition':
      // The partition's rows are checked against the bound, under ACCESS EXCLUSIVE on the partition.
      return combine([
        effect('SHARE UPDATE EXCLUSIVE', [table]),
        effect('ACCESS EXCLUSIVE', [relationName(rec(rec(def, 'PartitionCmd'), 'name'))], { scansTable: true }),
      ]);
    case 'AT_DetachPartition': {
      const partition = rec(def, 'PartitionCmd');
      const lock: LockMode = flag(partition, 'concurrent') ? 'SHARE UPDATE EXCLUSIVE' : 'ACCESS EXCLUSIVE';
      return effect(lock, [table, relationName(rec(partition, 'name'))]);
    }
    default:
      return effect(SUBCOMMAND_LOCKS[subtype] ?? 'ACCESS EXCLUSIVE', [table], { rewritesTable: REWRITING_SUBCOMMANDS.has(subtype) });
  }
}

/** ALTER TABLE takes the strongest lock any of its subcommands needs, once, for all of them. */
export function alterTableEffect(stmt: AstNode): Effect {
  const table = relationName(rec(stmt, 'relation'));
  const cmds = nodesOf(arr(stmt, 'cmds'), 'AlterTableCmd');
  if (cmds.length === 0) return effect('ACCESS EXCLUSIVE', [table]);
  return combine(cmds.map((cmd) => subcommand(table, cmd)));
}

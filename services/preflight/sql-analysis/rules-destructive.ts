import { arr, rec, relationName, str, type AstNode } from './ast.js';
import { droppedNames } from './statement-fields.js';
import { alterTableCmds, error, type Hit, type Rule } from './rule.js';

// Destructive changes break the application version still running during a
// rollout and lose data a rollback cannot bring back. They stay errors until
// someone acknowledges them with a reason; a table this migration created
// holds nothing yet, so changes to it are exempt.
const ACK_HINT = 'If this is intended (the code no longer uses it), acknowledge with a lint-ack comment giving the reason.';

export const destructiveRules: Rule = (kind, stmt, state) => {
  const hits: Hit[] = [];
  const relation = relationName(rec(stmt, 'relation'));
  switch (kind) {
    case 'AlterTableStmt':
      if (state.isCreatedHere(relation)) break;
      for (const cmd of alterTableCmds(stmt)) {
        if (str(cmd, 'subtype') !== 'AT_DropColumn') continue;
        hits.push(error(
          'ban-drop-column',
          `DROP COLUMN ${str(cmd, 'name')} on ${relation} loses its data and breaks code that still reads it. ` +
            `Stop using the column in a release first, then drop it in a later migration. ${ACK_HINT}`,
        ));
      }
      break;
    case 'DropStmt':
      if (str(stmt, 'removeType') === 'OBJECT_TABLE' && droppedNames(stmt).some((t) => !state.isCreatedHere(t))) {
        hits.push(error(
          'ban-drop-table',
          `DROP TABLE ${droppedNames(stmt).join(', ')} loses its data and breaks code that still uses it. ` +
            `Stop using the table in a release first (consider renaming it aside for a while), then drop it. ${ACK_HINT}`,
        ));
      }
      break;
    case 'DropdbStmt':
      hits.push(error('ban-drop-database', `DROP DATABASE ${str(stmt, 'dbname')} destroys everything in it; it does not belong in a migration. ${ACK_HINT}`));
      break;
    case 'RenameStmt': {
      if (state.isCreatedHere(relation)) break;
      const renameType = str(stmt, 'renameType');
      if (renameType === 'OBJECT_COLUMN' && str(stmt, 'relationType') === 'OBJECT_TABLE') {
        hits.push(error(
          'renaming-column',
          `RENAME COLUMN ${str(stmt, 'subname')} on ${relation} breaks the running application version that still uses the old name. ` +
            'Add a new column, dual-write, backfill, then drop the old one in a later release.',
        ));
      } else if (renameType === 'OBJECT_TABLE') {
        hits.push(error(
          'renaming-table',
          `RENAME TO on ${relation} breaks the running application version that still uses the old name. ` +
            'Create the new table (or a view under the old name), dual-write or migrate the code, then drop the old name in a later release.',
        ));
      }
      break;
    }
    case 'TruncateStmt': {
      const tables = truncatedTables(stmt);
      if (str(stmt, 'behavior') === 'DROP_CASCADE' && tables.some((t) => !state.isCreatedHere(t))) {
        hits.push(error(
          'ban-truncate-cascade',
          `TRUNCATE ${tables.join(', ')} CASCADE also empties every table with a foreign key to it, which the statement does not name. ` +
            `List the tables to truncate explicitly (without CASCADE). ${ACK_HINT}`,
        ));
      }
      break;
    }
  }
  return hits;
};

function truncatedTables(stmt: AstNode): string[] {
  return arr(stmt, 'relations').flatMap((r) => relationName(rec(r, 'RangeVar')) ?? []);
}

import type { FileType, LintState } from './lint-state.js';

// Advice that depends on where the statement is: a .sql migration always runs
// inside node-pg-migrate's transaction (its loader has no way to call
// pgm.noTransaction()), and a DO block is one transaction of its own.

function migrationHome(fileType: FileType): string {
  return fileType === 'sql'
    ? 'in a JS/TS migration of its own that calls pgm.noTransaction() (a .sql migration always runs inside a transaction)'
    : 'in a migration that calls pgm.noTransaction()';
}

/** Where a statement that must run outside a transaction block belongs, completing "Use X ...". */
export function outsideTransactionHome({ fileType, insideDo }: LintState): string {
  return insideDo ? `as a statement of its own, outside the DO block, ${migrationHome(fileType)}` : migrationHome(fileType);
}

/** The fix for a statement that fails inside a transaction block, as a clause (lower-case start). */
export function leaveTransactionAdvice({ fileType, insideDo }: LintState): string {
  if (insideDo) return `a DO block runs as one transaction, so this cannot run inside it: run it as a statement of its own ${migrationHome(fileType)}.`;
  if (fileType === 'sql') {
    return "a .sql migration always runs inside node-pg-migrate's transaction, so move this statement to a JS/TS migration of its own that calls pgm.noTransaction().";
  }
  return 'call pgm.noTransaction() in this migration (and keep it to this one statement, so a failure leaves nothing half-done).';
}

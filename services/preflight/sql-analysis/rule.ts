import { arr, nodesOf, type AstNode } from './ast.js';
import type { LintState } from './lint-state.js';
import type { Severity } from './types.js';

/** A rule's verdict on one statement, before it is tied to a migration and acknowledgements. */
export interface Hit {
  rule: string;
  severity: Severity;
  message: string;
}

export type Rule = (kind: string, stmt: AstNode, state: LintState) => Hit[];

export const error = (rule: string, message: string): Hit => ({ rule, severity: 'error', message });
export const warning = (rule: string, message: string): Hit => ({ rule, severity: 'warning', message });

export function alterTableCmds(stmt: AstNode): AstNode[] {
  return nodesOf(arr(stmt, 'cmds'), 'AlterTableCmd');
}

import { arr, names, nodesOf, num, qualify, rec, str, type AstNode } from './ast.js';

/** DROP's `objects` are lists of name parts, e.g. `[['s', 't']]`. */
export function droppedNames(stmt: AstNode): string[] {
  return arr(stmt, 'objects').flatMap((o) => qualify(names(arr(rec(o, 'List'), 'items'))) ?? []);
}

/** A REINDEX/VACUUM-style parenthesised option is on: given bare, or with a true value. */
export function hasOption(stmt: AstNode, key: 'params' | 'options', option: string): boolean {
  return nodesOf(arr(stmt, key), 'DefElem').some((d) => {
    if (str(d, 'defname') !== option) return false;
    const arg = rec(d, 'arg');
    if (!arg) return true;
    // Protobuf JSON drops a zero, so `(CONCURRENTLY 0)` arrives as `{ Integer: {} }`.
    const integer = rec(arg, 'Integer');
    if (integer) return (num(integer, 'ival') ?? 0) !== 0;
    const value = str(rec(arg, 'String'), 'sval')?.toLowerCase();
    return value === undefined || !['false', 'off', 'no'].includes(value);
  });
}

// libpg-query hands back untyped JSON (its typings say `any`); these helpers
// narrow it one field at a time so the analysis never trusts a shape blindly.

export type AstNode = Record<string, unknown>;

export function isRecord(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function rec(node: unknown, key: string): AstNode | undefined {
  if (!isRecord(node)) return undefined;
  const value = node[key];
  return isRecord(value) ? value : undefined;
}

export function str(node: unknown, key: string): string | undefined {
  if (!isRecord(node)) return undefined;
  const value = node[key];
  return typeof value === 'string' ? value : undefined;
}

export function num(node: unknown, key: string): number | undefined {
  if (!isRecord(node)) return undefined;
  const value = node[key];
  return typeof value === 'number' ? value : undefined;
}

/** Protobuf JSON omits false booleans, so absent means false. */
export function flag(node: unknown, key: string): boolean {
  return isRecord(node) && node[key] === true;
}

export function arr(node: unknown, key: string): unknown[] {
  if (!isRecord(node)) return [];
  const value = node[key];
  return Array.isArray(value) ? value : [];
}

/**
 * `{ IndexStmt: {...} }` → `['IndexStmt', {...}]`: every parse node is wrapped
 * in its type name. Node types are capitalised and fields are not, which keeps
 * a one-field body like `{ relation: {...} }` from passing for a node.
 */
export function unwrap(wrapper: unknown): [kind: string, body: AstNode] | undefined {
  if (!isRecord(wrapper)) return undefined;
  const keys = Object.keys(wrapper);
  const kind = keys[0];
  if (keys.length !== 1 || kind === undefined || !/^[A-Z]/.test(kind)) return undefined;
  const body = wrapper[kind];
  return isRecord(body) ? [kind, body] : undefined;
}

/** The bodies of the wrapped nodes of one kind in a node list (e.g. the `AlterTableCmd`s of `cmds`). */
export function nodesOf(items: unknown[], kind: string): AstNode[] {
  return items.flatMap((item) => {
    const body = rec(item, kind);
    return body ? [body] : [];
  });
}

/** `[{ String: { sval } }, ...]` → the svals, as used for qualified names. */
export function names(items: unknown[]): string[] {
  return items.flatMap((item) => {
    const value = str(rec(item, 'String'), 'sval');
    return value === undefined ? [] : [value];
  });
}

/** 'schema.table' as the rest of the service keys tables; an unqualified name means `public`. */
export function qualify(parts: string[]): string | undefined {
  const name = parts[parts.length - 1];
  if (name === undefined) return undefined;
  const schema = parts.length > 1 ? parts[parts.length - 2] : 'public';
  return `${schema}.${name}`.toLowerCase();
}

export function relationName(rangeVar: unknown): string | undefined {
  const relname = str(rangeVar, 'relname');
  if (relname === undefined) return undefined;
  const schema = str(rangeVar, 'schemaname');
  return qualify(schema === undefined ? [relname] : [schema, relname]);
}

/** Depth-first over every wrapped node below `node`, for expressions of unknown depth. */
export function walk(node: unknown, visit: (kind: string, body: AstNode) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit);
    return;
  }
  if (!isRecord(node)) return;
  const wrapped = unwrap(node);
  if (wrapped) visit(...wrapped);
  for (const value of Object.values(node)) walk(value, visit);
}

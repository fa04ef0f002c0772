import { arr, flag, names, rec, str, walk, type AstNode } from './ast.js';

// Since PG11 ADD COLUMN with a non-volatile default stores the value once in
// the catalog; a volatile default must be computed per row, which rewrites
// the table. The linter cannot ask the target about user functions, so it
// knows the common built-ins and calls the rest "unknown".
const VOLATILE = new Set([
  'random', 'setseed', 'gen_random_uuid', 'uuid_generate_v1', 'uuid_generate_v1mc', 'uuid_generate_v4',
  'clock_timestamp', 'timeofday', 'nextval', 'txid_current', 'pg_current_xact_id', 'gen_random_bytes',
]);

const STABLE_OR_IMMUTABLE = new Set([
  'now', 'transaction_timestamp', 'statement_timestamp', 'current_setting', 'current_database', 'current_schema',
  'to_timestamp', 'to_date', 'to_char', 'to_number', 'make_date', 'make_time', 'make_timestamp', 'make_timestamptz',
  'make_interval', 'date_trunc', 'date_part', 'extract', 'timezone', 'age',
  'lower', 'upper', 'trim', 'btrim', 'ltrim', 'rtrim', 'substring', 'substr', 'replace', 'concat', 'concat_ws',
  'length', 'left', 'right', 'lpad', 'rpad', 'md5', 'encode', 'decode', 'format',
  'abs', 'round', 'ceil', 'floor', 'trunc', 'greatest', 'least', 'coalesce', 'nullif',
  'to_json', 'to_jsonb', 'json_build_object', 'jsonb_build_object', 'json_build_array', 'jsonb_build_array',
  'array_fill', 'int4range', 'int8range', 'numrange', 'tsrange', 'tstzrange', 'daterange',
]);

const SERIAL_TYPES = new Set(['serial', 'serial2', 'serial4', 'serial8', 'smallserial', 'bigserial']);

export type DefaultKind = 'none' | 'stable' | 'volatile' | 'unknown';

export interface ColumnDefault {
  kind: DefaultKind;
  /** Why the column's values must be computed per row, for messages. */
  detail: string;
}

/** Function calls in a default expression, by their unqualified lower-case name. */
function calledFunctions(expr: unknown): string[] {
  const called: string[] = [];
  walk(expr, (kind, body) => {
    if (kind !== 'FuncCall') return;
    const name = names(arr(body, 'funcname')).pop();
    if (name !== undefined) called.push(name.toLowerCase());
  });
  return called;
}

export function classifyExpression(expr: unknown): ColumnDefault {
  const called = calledFunctions(expr);
  const volatile = called.find((f) => VOLATILE.has(f));
  if (volatile) return { kind: 'volatile', detail: `DEFAULT calls ${volatile}(), which is volatile` };
  const unknown = called.find((f) => !STABLE_OR_IMMUTABLE.has(f));
  if (unknown) return { kind: 'unknown', detail: `DEFAULT calls ${unknown}(), whose volatility the linter cannot verify` };
  return { kind: 'stable', detail: 'DEFAULT is stable' };
}

function constraintsOf(columnDef: AstNode): AstNode[] {
  return arr(columnDef, 'constraints').flatMap((c) => {
    const body = rec(c, 'Constraint');
    return body ? [body] : [];
  });
}

export function columnConstraintTypes(columnDef: AstNode): string[] {
  return constraintsOf(columnDef).flatMap((c) => str(c, 'contype') ?? []);
}

/**
 * How a newly added column gets its values for existing rows: serial and
 * identity columns draw from a sequence, and stored generated columns compute
 * per row, so all of them rewrite the table like a volatile default does.
 */
export function columnDefault(columnDef: AstNode): ColumnDefault {
  const typeName = names(arr(rec(columnDef, 'typeName'), 'names')).pop()?.toLowerCase();
  if (typeName !== undefined && SERIAL_TYPES.has(typeName)) {
    return { kind: 'volatile', detail: `type ${typeName} defaults to nextval(), which is volatile` };
  }
  const constraints = constraintsOf(columnDef);
  if (constraints.some((c) => str(c, 'contype') === 'CONSTR_IDENTITY')) {
    return { kind: 'volatile', detail: 'an identity column draws a sequence value per row' };
  }
  if (constraints.some((c) => str(c, 'contype') === 'CONSTR_GENERATED')) {
    return { kind: 'volatile', detail: 'a stored generated column is computed per row' };
  }
  const defaults = constraints.filter((c) => str(c, 'contype') === 'CONSTR_DEFAULT');
  if (defaults.length === 0) return { kind: 'none', detail: 'no default' };
  // DEFAULT NULL is the same as no default: existing rows stay NULL.
  const expr = defaults[defaults.length - 1]?.raw_expr;
  if (flag(rec(expr, 'A_Const'), 'isnull')) {
    return { kind: 'none', detail: 'DEFAULT NULL' };
  }
  return classifyExpression(expr);
}

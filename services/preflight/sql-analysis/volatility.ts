import { arr, flag, names, rec, str, walk, type AstNode } from './ast.js';
import type { Volatility } from './schema-facts.js';

// Since PG11 ADD COLUMN with a non-volatile default stores the value once in
// the catalog; a volatile default must be computed per row, which rewrites
// the table. With a catalog (or the migration's own CREATE FUNCTION) the
// linter looks a function up; without one it knows the common built-ins and
// calls the rest "unknown".
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

// Built-ins that take no arguments: called with some, they name a function that does not exist.
const NO_ARGUMENTS = new Set([
  'now', 'transaction_timestamp', 'statement_timestamp', 'clock_timestamp', 'timeofday', 'current_database', 'current_schema', 'gen_random_uuid',
  'uuid_generate_v1', 'uuid_generate_v1mc', 'uuid_generate_v4', 'txid_current', 'pg_current_xact_id',
]);

const SERIAL_TYPES = new Set(['serial', 'serial2', 'serial4', 'serial8', 'smallserial', 'bigserial']);

export type DefaultKind = 'none' | 'stable' | 'volatile' | 'unknown';

export interface ColumnDefault {
  kind: DefaultKind;
  /** Where the per-row value comes from; the safe alternative differs for each. */
  origin: 'none' | 'expression' | 'serial' | 'identity' | 'generated';
  /** Why the column's values must be computed per row, for messages. */
  detail: string;
}

/** A function's volatility by its (lower-case) name parts, or undefined when nothing says. */
export type VolatilityLookup = (parts: string[]) => Volatility | undefined;

/** Function calls in a default expression, by their lower-case name parts. */
function calledFunctions(expr: unknown): Array<{ parts: string[]; args: number }> {
  const called: Array<{ parts: string[]; args: number }> = [];
  walk(expr, (kind, body) => {
    if (kind !== 'FuncCall') return;
    const parts = names(arr(body, 'funcname')).map((p) => p.toLowerCase());
    if (parts.length > 0) called.push({ parts, args: arr(body, 'args').length });
  });
  return called;
}

function volatilityOf({ parts, args }: { parts: string[]; args: number }, lookup: VolatilityLookup | undefined): Volatility | 'unknown' {
  const found = lookup?.(parts);
  if (found) return found;
  const name = parts[parts.length - 1]!;
  if (args > 0 && NO_ARGUMENTS.has(name)) return 'unknown';
  // pg_catalog's own functions keep their well-known volatility whatever the schema prefix.
  if (parts.length === 1 || parts[0] === 'pg_catalog') {
    if (VOLATILE.has(name)) return 'volatile';
    if (STABLE_OR_IMMUTABLE.has(name)) return 'stable';
  }
  return 'unknown';
}

export function classifyExpression(expr: unknown, lookup?: VolatilityLookup): ColumnDefault {
  const called = calledFunctions(expr).map((call) => ({ name: call.parts.join('.'), v: volatilityOf(call, lookup) }));
  const volatile = called.find((f) => f.v === 'volatile');
  if (volatile) return { kind: 'volatile', origin: 'expression', detail: `DEFAULT calls ${volatile.name}(), which is volatile` };
  const unknown = called.find((f) => f.v === 'unknown');
  if (unknown) return { kind: 'unknown', origin: 'expression', detail: `DEFAULT calls ${unknown.name}(), whose volatility the linter cannot verify` };
  return { kind: 'stable', origin: 'expression', detail: 'DEFAULT is stable' };
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
export function columnDefault(columnDef: AstNode, lookup?: VolatilityLookup): ColumnDefault {
  const typeName = names(arr(rec(columnDef, 'typeName'), 'names')).pop()?.toLowerCase();
  if (typeName !== undefined && SERIAL_TYPES.has(typeName)) {
    return { kind: 'volatile', origin: 'serial', detail: `type ${typeName} defaults to nextval(), which is volatile` };
  }
  const constraints = constraintsOf(columnDef);
  if (constraints.some((c) => str(c, 'contype') === 'CONSTR_IDENTITY')) {
    return { kind: 'volatile', origin: 'identity', detail: 'an identity column draws a sequence value per row' };
  }
  if (constraints.some((c) => str(c, 'contype') === 'CONSTR_GENERATED')) {
    return { kind: 'volatile', origin: 'generated', detail: 'a stored generated column is computed per row' };
  }
  const defaults = constraints.filter((c) => str(c, 'contype') === 'CONSTR_DEFAULT');
  if (defaults.length === 0) return { kind: 'none', origin: 'none', detail: 'no default' };
  // DEFAULT NULL is the same as no default: existing rows stay NULL.
  const expr = defaults[defaults.length - 1]?.raw_expr;
  if (flag(rec(expr, 'A_Const'), 'isnull')) {
    return { kind: 'none', origin: 'none', detail: 'DEFAULT NULL' };
  }
  return classifyExpression(expr, lookup);
}

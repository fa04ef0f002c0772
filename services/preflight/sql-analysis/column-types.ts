import { arr, names, num, rec, str, type AstNode } from './ast.js';

// Which ALTER COLUMN ... TYPE changes PostgreSQL makes without rewriting the
// table (ATColumnChangeRequiresRewrite in tablecmds.c): a binary-coercible
// change, or a typmod change its support function proves safe. Everything
// else rewrites the table and its indexes under ACCESS EXCLUSIVE.

export interface ColumnType {
  /** The catalog type name: 'varchar', 'numeric', 'int4', ... */
  base: string;
  /** Type modifiers: varchar(20) → [20]; numeric(10,2) → [10, 2]. */
  mods: number[];
  array: boolean;
}

// format_type() spells some types in SQL-standard words.
const DISPLAY: Readonly<Record<string, string>> = {
  varchar: 'character varying', bpchar: 'character', varbit: 'bit varying', int2: 'smallint', int4: 'integer', int8: 'bigint',
  float4: 'real', float8: 'double precision', bool: 'boolean', timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone', time: 'time without time zone', timetz: 'time with time zone',
};
const BASE_OF_DISPLAY = new Map(Object.entries(DISPLAY).map(([base, display]) => [display, base]));
const ZONED = new Set(['timestamp', 'timestamptz', 'time', 'timetz']);

/** A type as the parser gives it (a ColumnDef's `typeName`). */
export function typeFromName(typeName: AstNode | undefined): ColumnType | undefined {
  const base = names(arr(typeName, 'names')).pop()?.toLowerCase();
  if (base === undefined) return undefined;
  const mods = arr(typeName, 'typmods').map((m) => num(rec(rec(m, 'A_Const'), 'ival'), 'ival') ?? 0);
  return normalize({ base, mods, array: arr(typeName, 'arrayBounds').length > 0 });
}

/** A type as format_type() prints it: 'character varying(20)', 'numeric(10,2)', 'timestamp(3) with time zone', 'text[]'. */
export function typeFromFormat(text: string): ColumnType | undefined {
  const match = /^(.*?)(?:\((\d+(?:,\d+)*)\))?( with(?:out)? time zone)?((?:\[\])*)$/.exec(text.trim().toLowerCase());
  if (!match) return undefined;
  const word = `${match[1]!.replace(/^"|"$/g, '')}${match[3] ?? ''}`.trim();
  const base = BASE_OF_DISPLAY.get(word) ?? word;
  return normalize({ base, mods: match[2] ? match[2].split(',').map(Number) : [], array: (match[4] ?? '') !== '' });
}

export function formatType(type: ColumnType): string {
  const display = DISPLAY[type.base] ?? type.base;
  const mods = type.mods.length ? `(${type.mods.join(',')})` : '';
  const zoned = ZONED.has(type.base) ? display.replace(/^(timestamp|time)/, `$1${mods}`) : `${display}${mods}`;
  return `${zoned}${type.array ? '[]' : ''}`;
}

function normalize(type: ColumnType): ColumnType {
  // numeric(p) is numeric(p,0).
  if (type.base === 'numeric' && type.mods.length === 1) return { ...type, mods: [type.mods[0]!, 0] };
  return type;
}

const TEXT_LIKE = new Set(['text', 'varchar']);
const BINARY_COERCIBLE = new Set(['cidr>inet', 'varchar>text', 'text>varchar', 'bpchar>varchar', 'bpchar>text']);

/** True unless PostgreSQL 15 changes `from` into `to` in the catalog only. */
export function typeChangeRewrites(from: ColumnType, to: ColumnType): boolean {
  if (from.array !== to.array) return true;
  const widerOrUnbounded = (at: number) => to.mods.length === 0 || (from.mods.length > 0 && (to.mods[at] ?? 0) >= (from.mods[at] ?? 0));
  if (from.base === to.base) {
    if (from.mods.join(',') === to.mods.join(',')) return false;
    if (from.base === 'varchar' || from.base === 'varbit') return !widerOrUnbounded(0);
    // numeric_support: more precision with the same scale keeps every value.
    if (from.base === 'numeric') return !(to.mods.length === 0 || (from.mods.length === 2 && to.mods[1] === from.mods[1] && widerOrUnbounded(0)));
    if (ZONED.has(from.base) || from.base === 'interval') return !widerOrUnbounded(0);
    return true;
  }
  // Unbounded targets only: a length limit is a function call that checks every value.
  if (TEXT_LIKE.has(to.base) && to.mods.length === 0 && BINARY_COERCIBLE.has(`${from.base}>${to.base}`)) {
    // bpchar → text/varchar strips trailing blanks: a function, so a rewrite.
    return from.base === 'bpchar';
  }
  return !(BINARY_COERCIBLE.has(`${from.base}>${to.base}`) && to.mods.length === 0);
}

/** ALTER COLUMN TYPE's USING, when it only names the column or casts it to the new type, changes nothing. */
export function usingIsTrivial(columnDef: AstNode | undefined, column: string): boolean {
  const using = rec(columnDef, 'raw_default');
  if (!using) return true;
  const isColumn = (node: AstNode | undefined) => names(arr(rec(node, 'ColumnRef'), 'fields')).join('.').toLowerCase() === column.toLowerCase();
  if (isColumn(using)) return true;
  const cast = rec(using, 'TypeCast');
  if (!cast || !isColumn(rec(cast, 'arg'))) return false;
  const target = typeFromName(rec(columnDef, 'typeName'));
  const castTo = typeFromName(rec(cast, 'typeName'));
  return target !== undefined && castTo !== undefined && formatType(target) === formatType(castTo);
}

/** The new type of an AT_AlterColumnType subcommand. */
export function alterColumnTarget(cmd: AstNode): { column: string; type: ColumnType | undefined; def: AstNode | undefined } {
  const def = rec(rec(cmd, 'def'), 'ColumnDef');
  return { column: (str(cmd, 'name') ?? '').toLowerCase(), type: typeFromName(rec(def, 'typeName')), def };
}

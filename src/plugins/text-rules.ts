// What text the API accepts, independent of any one field's schema. PostgreSQL
// refuses NUL in text and lone surrogates in jsonb (a 500 half-way through a
// transaction), silently turns a lone surrogate in text into U+FFFD, and
// control characters rewrite terminals and log lines when a description or a
// reason is shown back to an operator. Tab, line feed and carriage return stay
// allowed: free text (descriptions, comments, reasons) is multi-line.

// C0 controls other than \t \n \r, DEL, C1 controls, and (with /u) any
// surrogate code unit that is not half of a pair.
const FORBIDDEN = /[\0-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]|\p{Cs}/u;

const hex = (code: number) => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `value` may not enter the service, or null when it may. */
export function textProblem(value: string): string | null {
  const match = FORBIDDEN.exec(value);
  if (!match) return null;
  const code = match[0].charCodeAt(0);
  const at = `at character ${match.index + 1}`;
  if (code === 0) return `contains a NUL character (U+0000) ${at}`;
  if (code >= 0xd800 && code <= 0xdfff) return `contains a lone surrogate (${hex(code)}) ${at}: not valid Unicode text`;
  return `contains the control character ${hex(code)} ${at} (only tab, line feed and carriage return are allowed)`;
}

/** A field name as it may be shown back: forbidden characters written as \uXXXX, "/" and "~" escaped as in a JSON pointer. */
function pointerToken(key: string): string {
  const escaped = key.replace(/~/g, '~0').replace(/\//g, '~1');
  return escaped.replace(new RegExp(FORBIDDEN.source, 'gu'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface TextFault {
  /** Where, as in validation errors: `body/description`, `querystring/environment`, `body/items/0`. */
  path: string;
  message: string;
}

/**
 * The first string (value or field name) in a parsed JSON value that breaks
 * the rules, or null. Iterative: a 64 KiB body can nest deeper than the stack.
 */
export function findBadText(value: unknown, root: string): TextFault | null {
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [current, path] = stack.pop()!;
    if (typeof current === 'string') {
      const problem = textProblem(current);
      if (problem) return { path, message: problem };
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push([current[i], `${path}/${i}`]);
    } else if (current !== null && typeof current === 'object') {
      const keys = Object.keys(current);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        const problem = textProblem(key);
        if (problem) return { path: `${path}/${pointerToken(key)}`, message: `has a field name that ${problem}` };
        stack.push([(current as Record<string, unknown>)[key], `${path}/${pointerToken(key)}`]);
      }
    }
  }
  return null;
}

/**
 * A query string whose every name and value is valid percent-encoded UTF-8
 * and good text; otherwise the first fault. Fastify's parser keeps an
 * undecodable value as its raw %-text, which would pass for a real value.
 */
export function findBadQuery(rawQuery: string): TextFault | null {
  if (rawQuery === '') return null;
  for (const pair of rawQuery.split('&')) {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
    const name = decodeStrict(rawName);
    if (name === null) return { path: `querystring/${pointerToken(rawName)}`, message: 'has a name that is not valid percent-encoded UTF-8' };
    const nameProblem = textProblem(name);
    if (nameProblem) return { path: `querystring/${pointerToken(name)}`, message: `has a name that ${nameProblem}` };
    const value = decodeStrict(rawValue);
    if (value === null) return { path: `querystring/${pointerToken(name)}`, message: 'is not valid percent-encoded UTF-8 (overlong, surrogate or truncated sequence)' };
    const valueProblem = textProblem(value);
    if (valueProblem) return { path: `querystring/${pointerToken(name)}`, message: valueProblem };
  }
  return null;
}

function decodeStrict(component: string): string | null {
  try {
    return decodeURIComponent(component.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

export interface Utf8Fault {
  offset: number;
  reason: string;
}

/**
 * The first byte where `bytes` stops being well-formed UTF-8 (RFC 3629:
 * no overlong forms, no encoded surrogates, nothing above U+10FFFF), or null.
 */
export function utf8Problem(bytes: Uint8Array): Utf8Fault | null {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) { i++; continue; }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; min = 0x80; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; min = 0x800; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; min = 0x10000; }
    else if (b === 0xc0 || b === 0xc1) return { offset: i, reason: 'an overlong encoding' };
    else if (b >= 0x80 && b <= 0xbf) return { offset: i, reason: 'a continuation byte without a lead byte' };
    else return { offset: i, reason: `0x${b.toString(16)} never occurs in UTF-8` };
    let code = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return { offset: i, reason: 'a truncated multi-byte sequence' };
      if ((c & 0xc0) !== 0x80) return { offset: i, reason: 'a truncated multi-byte sequence' };
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min) return { offset: i, reason: 'an overlong encoding' };
    if (code >= 0xd800 && code <= 0xdfff) return { offset: i, reason: 'an encoded surrogate (CESU-8/WTF-8 is not UTF-8)' };
    if (code > 0x10ffff) return { offset: i, reason: 'a code point above U+10FFFF' };
    i += need + 1;
  }
  return null;
}

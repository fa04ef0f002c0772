// Which field of a JSON text a character offset falls in, so a body refused
// for its bytes (invalid UTF-8) can name the field like a validation error.
// Only the text before the offset is read, and it is assumed well-formed so
// far; anything it cannot follow yields the nearest enclosing path.

interface Frame {
  kind: 'object' | 'array';
  /** object: the current member's name once read; array: the current index. */
  key: string | number | null;
  awaitingKey: boolean;
}

const token = (key: string | number) => String(key).replace(/~/g, '~0').replace(/\//g, '~1');

function pathOf(root: string, stack: Frame[]): string {
  const parts = [root];
  for (const frame of stack) if (frame.key !== null) parts.push(token(frame.key));
  return parts.join('/');
}

/** `root/...` path of the JSON value (or member name) at `offset` of `text`. */
export function jsonPathAt(text: string, offset: number, root = 'body'): { path: string; inName: boolean } {
  const stack: Frame[] = [];
  let i = 0;
  while (i < offset && i < text.length) {
    const c = text[i]!;
    const top = stack[stack.length - 1];
    if (c === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const isName = top?.kind === 'object' && top.awaitingKey;
      if (end >= offset) {
        // The offset is inside this string.
        if (isName) return { path: pathOf(root, stack), inName: true };
        return { path: pathOf(root, stack), inName: false };
      }
      if (isName) {
        try {
          top.key = JSON.parse(text.slice(i, end + 1)) as string;
        } catch {
          top.key = text.slice(i + 1, end);
        }
      }
      i = end + 1;
      continue;
    }
    if (c === '{') stack.push({ kind: 'object', key: null, awaitingKey: true });
    else if (c === '[') stack.push({ kind: 'array', key: 0, awaitingKey: false });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ':' && top?.kind === 'object') top.awaitingKey = false;
    else if (c === ',' && top) {
      if (top.kind === 'object') {
        top.awaitingKey = true;
        top.key = null;
      } else top.key = (top.key as number) + 1;
    }
    i++;
  }
  return { path: pathOf(root, stack), inName: false };
}

// Findings and reports quote statements; a CREATE FUNCTION body can run to
// pages, so quotes are capped.
const MAX_QUOTED_CHARS = 500;

export function quoteStatement(text: string): string {
  const trimmed = text.trim();
  return trimmed.length <= MAX_QUOTED_CHARS ? trimmed : `${trimmed.slice(0, MAX_QUOTED_CHARS - 1)}…`;
}

/**
 * The parser's statement ranges start right after the previous `;`, so a
 * comment introducing the next statement belongs to it; readers want the
 * statement itself.
 */
export function stripLeadingComments(text: string): string {
  let rest = text.trimStart();
  for (;;) {
    if (rest.startsWith('--')) {
      const newline = rest.indexOf('\n');
      rest = newline === -1 ? '' : rest.slice(newline + 1).trimStart();
    } else if (rest.startsWith('/*')) {
      const end = blockCommentEnd(rest);
      if (end === -1) return rest.trimEnd();
      rest = rest.slice(end).trimStart();
    } else {
      return rest.trimEnd();
    }
  }
}

// PostgreSQL block comments nest, unlike C's.
function blockCommentEnd(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length - 1; i++) {
    const pair = text.slice(i, i + 2);
    if (pair === '/*') {
      depth++;
      i++;
    } else if (pair === '*/') {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

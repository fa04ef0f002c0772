// Ajv's own words for a bad enum value ("must be equal to constant; must be
// equal to constant; must match a schema in anyOf", or "must be equal to one
// of the allowed values") name nothing the caller can fix it with. TypeBox
// writes a union of literals as anyOf of const; Ajv reports each branch and
// then the anyOf. Those reports collapse into one message naming the values.

export interface AjvError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message?: string;
}

const list = (values: unknown[]) => values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');

/** The errors with each enum-like failure as one `must be one of: a, b` (same order otherwise). */
export function explainEnums<T extends AjvError>(errors: readonly T[]): T[] {
  const out: T[] = [];
  for (const error of errors) {
    if (error.keyword === 'enum' && Array.isArray(error.params.allowedValues)) {
      out.push({ ...error, message: `must be one of: ${list(error.params.allowedValues)}` });
      continue;
    }
    if (error.keyword === 'anyOf') {
      // The branch errors Ajv reported just before: same place, under this anyOf's schema path.
      const prefix = `${error.schemaPath}/`;
      const branches: T[] = [];
      while (out.length && out.at(-1)!.instancePath === error.instancePath && out.at(-1)!.schemaPath.startsWith(prefix)) branches.unshift(out.pop()!);
      if (branches.length && branches.every((b) => b.keyword === 'const' && 'allowedValue' in b.params)) {
        out.push({ ...error, message: `must be one of: ${list(branches.map((b) => b.params.allowedValue))}` });
        continue;
      }
      out.push(...branches);
    }
    out.push(error);
  }
  return out;
}

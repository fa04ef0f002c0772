// With rows from the target on the copy, a PostgreSQL message can quote them
// ('invalid input syntax for type integer: "4O2"', 'Key (email)=(a@b.c)').
// Reports carry counts, sizes and timings of the data, never a value: quoted
// text survives only where the message names an object.

const NAMES_AN_OBJECT = /\b(relation|table|column|constraint|index|type|schema|function|procedure|sequence|trigger|view|database|role|extension|operator|domain|encoding|policy|rule|statistics|collation|publication|subscription|server|tablespace|partition|savepoint|cursor|of)\s*$/i;

export function withoutDataValues(message: string): string {
  const keyed = message.replace(/\(([^()]*)\)=\((?:[^()]|\([^()]*\))*\)/g, '($1)=(…)');
  return keyed.replace(/"(?:[^"]|"")*"/g, (quoted, offset: number) => (NAMES_AN_OBJECT.test(keyed.slice(0, offset)) ? quoted : '"…"'));
}

/** The first ERROR line of a psql or pg_restore stderr, its values removed (DETAIL and CONTEXT lines quote rows). */
export function toolErrorLine(stderr: string): string {
  const line = stderr.split('\n').find((l) => /\b(ERROR|FATAL|error):/.test(l)) ?? stderr.split('\n').find((l) => l.trim() !== '') ?? '';
  return withoutDataValues(line.replace(/^.*?\b(ERROR|FATAL|error):\s*/, '').trim()).slice(0, 500);
}

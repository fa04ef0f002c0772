import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FIXTURE_BASE } from './migrations.js';

// A migrations tree like an operator's: migrations/ with a `.js` migration
// that imports a helper from lib/ (which imports another one), and a `.sql`
// migration. What a run approves and what must run, whatever happens on disk.

/** The accounts columns the approved content adds: note (helper-built, .js) and score (.sql). */
export const APPROVED_COLUMNS = ['id', 'email', 'note', 'score'];
export const BASE_NAMES = ['1000_etl-control', '1100_create-accounts'];
export const APPROVED_NAMES = ['2000_add-note', '2100_add-score'];

export const NOTE_JS = `// The column comes from a shared helper, imported without an extension (the loader resolves it).
import { column } from '../lib/columns';
export const up = (pgm) => { pgm.sql(\`ALTER TABLE accounts ADD COLUMN \${column} text\`); };
export const down = (pgm) => { pgm.sql(\`ALTER TABLE accounts DROP COLUMN \${column}\`); };
`;
export const COLUMNS_MJS = `import { quote } from './quote.cjs';\nexport const column = quote('note');\n`;
export const QUOTE_CJS = `module.exports = { quote: (name) => '"' + name + '"' };\n`;
export const SCORE_SQL = `-- Up Migration
ALTER TABLE accounts ADD COLUMN score int;
-- Down Migration
ALTER TABLE accounts DROP COLUMN score;
`;

/** Writes the base migrations (`withApproved`: and the approved ones with their helpers); removes anything else. */
export async function writeTree(root: string, withApproved = true): Promise<void> {
  for (const sub of ['migrations', 'lib']) {
    await rm(join(root, sub), { recursive: true, force: true });
    await mkdir(join(root, sub), { recursive: true });
  }
  for (const [name, source] of Object.entries(FIXTURE_BASE)) await writeFile(join(root, 'migrations', `${name}.js`), source);
  if (!withApproved) return;
  await writeFile(join(root, 'migrations', '2000_add-note.js'), NOTE_JS);
  await writeFile(join(root, 'migrations', '2100_add-score.sql'), SCORE_SQL);
  await writeFile(join(root, 'lib', 'columns.mjs'), COLUMNS_MJS);
  await writeFile(join(root, 'lib', 'quote.cjs'), QUOTE_CJS);
}

/** The files (relative paths) under a directory, recursively; [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name))).map((f) => `${e.name}/${f}`));
    else out.push(e.name);
  }
  return out;
}

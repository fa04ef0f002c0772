import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAuthTokens, type TokenEntry } from './config/auth-tokens.js';

const DEMO_SUBJECTS = [
  ['demo-requester', 'requester'],
  ['demo-engineer', 'engineering'],
  ['demo-sre', 'sre'],
  ['demo-operator', 'operator'],
  ['demo-viewer', 'viewer'],
  ['demo-admin', 'admin'],
] as const;

/**
 * For the embedded demo only: one token per role in DATA_DIR/demo-tokens.json
 * (the AUTH_TOKENS_FILE format), created once and reused by later starts.
 */
export async function loadOrCreateDemoTokens(dataDir: string): Promise<{ file: string; tokens: TokenEntry[] }> {
  const file = join(dataDir, 'demo-tokens.json');
  if (!existsSync(file)) {
    const entries = DEMO_SUBJECTS.map(([subject, role]) => ({ subject, roles: [role], token: `sf_demo_${randomBytes(18).toString('base64url')}` }));
    await writeFile(file, JSON.stringify(entries, null, 2) + '\n', { mode: 0o600 });
  }
  return { file, tokens: parseAuthTokens(await readFile(file, 'utf8'), file) };
}

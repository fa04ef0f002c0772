// `npm ci` on the oldest Node our engines field allows must print no
// EBADENGINE warning: every package in the lockfile that npm installs here
// accepts that Node version (and the one running the tests).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { PROJECT_ROOT } from '../../database/paths.js';

interface LockPackage {
  version?: string;
  engines?: { node?: string } | string[];
  os?: string[];
  cpu?: string[];
}

/** Packages npm skips on this machine (another platform's binaries) cannot warn here. */
function installsHere(p: LockPackage): boolean {
  const matches = (list: string[] | undefined, value: string) =>
    !list || list.length === 0 || list.some((v) => (v.startsWith('!') ? v.slice(1) !== value : v === value));
  return matches(p.os, process.platform) && matches(p.cpu, process.arch);
}

test('every installed package accepts the oldest Node version our engines field allows, and this one', async () => {
  const lock = JSON.parse(await readFile(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const range = (lock.packages['']!.engines as { node: string }).node;
  const oldest = semver.minVersion(range)!.version;
  assert.ok(semver.gte(oldest, '20.0.0'), `engines.node ${range}`);
  assert.ok(semver.satisfies(process.version, range), `this Node ${process.version} satisfies ${range}`);
  const refused: string[] = [];
  for (const [path, p] of Object.entries(lock.packages)) {
    if (path === '' || !installsHere(p) || Array.isArray(p.engines)) continue;
    const wants = p.engines?.node;
    if (!wants) continue;
    for (const node of [oldest, process.version]) {
      if (!semver.satisfies(node, wants)) refused.push(`${path.replace(/^.*node_modules\//, '')}@${p.version} wants node ${wants}, not ${node}`);
    }
  }
  assert.deepEqual(refused, [], `npm ci would warn EBADENGINE (pin a compatible version in "overrides", or raise engines.node):\n${refused.join('\n')}`);
});

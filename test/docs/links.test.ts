// The docs stand alone: every relative link in the repository's Markdown
// resolves inside the repository (files and #headings), and nothing points at
// ../shared, which a clone does not have.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../database/paths.js';
import { brokenLinks, headingAnchors, linkTargets, markdownFiles } from '../support/markdown-links.js';

test('every relative link in *.md resolves inside the repository, #anchors included', async () => {
  const files = await markdownFiles(PROJECT_ROOT);
  assert.ok(files.length >= 6, files.join(', '));
  const problems = files.flatMap((file) => brokenLinks(PROJECT_ROOT, file));
  assert.deepEqual(problems, []);
});

test('no Markdown file mentions ../shared, even outside a link', async () => {
  const mentions: string[] = [];
  for (const file of await markdownFiles(PROJECT_ROOT)) {
    const text = await readFile(file, 'utf8');
    if (/\.\.\/shared|\/work\/shared/.test(text)) mentions.push(relative(PROJECT_ROOT, file));
  }
  assert.deepEqual(mentions, []);
});

test('the docs exist and the README and ops/README.md link to them', async () => {
  for (const doc of ['docs/design.md', 'docs/api.md', 'docs/runbook-mapping.md']) {
    const links = linkTargets(await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8'));
    assert.ok(links.some((l) => l.split('#')[0] === doc), `README links ${doc}`);
  }
  const ops = linkTargets(await readFile(join(PROJECT_ROOT, 'ops/README.md'), 'utf8'));
  assert.ok(ops.some((l) => l.startsWith('../docs/runbook-mapping.md')), 'ops/README.md links the runbook mapping');
});

test('the checker itself: a missing file, a missing anchor, ../shared and a link out of the repository are found; code is not a link', () => {
  const file = join(PROJECT_ROOT, 'docs', 'example.md');
  const md = [
    '# Title', '## A & B (c)', 'See [design](design.md), [api](api.md#auth), [here](#a--b-c).',
    '[gone](nope.md) [anchor](design.md#no-such-heading) [shared](../../shared/DESIGN.md) [out](../../../etc/passwd)',
    '`[code](nothing.md)`', '```', '[block](nothing.md)', '```', '[ref]: missing/ref.md', '[web](https://example.com/x.md)',
  ].join('\n');
  assert.deepEqual(brokenLinks(PROJECT_ROOT, file, md), [
    'docs/example.md: nope.md does not exist',
    'docs/example.md: design.md#no-such-heading: no heading #no-such-heading in docs/design.md',
    'docs/example.md: ../../shared/DESIGN.md points at ../shared, which a clone of the repository does not have',
    'docs/example.md: ../../../etc/passwd leaves the repository',
    'docs/example.md: missing/ref.md does not exist',
  ]);
  assert.deepEqual([...headingAnchors('# CLI: `sfm`\n## Backfills: add → backfill → enforce\n## X\n## X')], ['cli-sfm', 'backfills-add--backfill--enforce', 'x', 'x-1']);
});

// A small Markdown link checker for the repository's own docs: relative links
// must resolve to a file inside the repository, and a #fragment to a heading
// of the file it points at (GitHub's anchor rules).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';

const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.data']);

export async function markdownFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (SKIP_DIRS.has(entry.name) || entry.name.startsWith('.tmp-')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await markdownFiles(root, path)));
    else if (entry.name.endsWith('.md')) out.push(path);
  }
  return out.sort();
}

/** The text with code blocks, code spans and HTML comments blanked (links there are examples, not links). */
export function proseOf(markdown: string): string {
  return markdown
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/`[^`\n]*`/g, '``');
}

/** Link targets: inline [text](target) and ![alt](target), and reference definitions [id]: target. */
export function linkTargets(markdown: string): string[] {
  const prose = proseOf(markdown);
  const out: string[] = [];
  for (const m of prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]!);
  for (const m of prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) out.push(m[1]!);
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const text = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const plain = m[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const slug = plain.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** What is wrong with each relative link of `file` (empty when all resolve inside `root`). */
export function brokenLinks(root: string, file: string, markdown = readFileSync(file, 'utf8')): string[] {
  const problems: string[] = [];
  const where = relative(root, file);
  for (const target of linkTargets(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:: not ours to check
    if (target.includes('../shared') || target.includes('shared/domain')) {
      problems.push(`${where}: ${target} points at ../shared, which a clone of the repository does not have`);
      continue;
    }
    const [pathPart, fragment] = target.split('#', 2) as [string, string | undefined];
    const path = decodeURIComponent(pathPart);
    if (path === '') {
      if (fragment && !headingAnchors(markdown).has(decodeURIComponent(fragment).toLowerCase())) problems.push(`${where}: #${fragment}: no such heading here`);
      continue;
    }
    const resolved = isAbsolute(path) ? join(root, path) : resolve(dirname(file), path);
    const inside = relative(root, resolved);
    if (inside.startsWith('..') || isAbsolute(inside)) {
      problems.push(`${where}: ${target} leaves the repository`);
      continue;
    }
    if (!existsSync(resolved)) {
      problems.push(`${where}: ${target} does not exist`);
      continue;
    }
    if (fragment && resolved.endsWith('.md') && statSync(resolved).isFile()) {
      const anchors = headingAnchors(readFileSync(resolved, 'utf8'));
      if (!anchors.has(decodeURIComponent(fragment).toLowerCase())) problems.push(`${where}: ${target}: no heading #${fragment} in ${inside}`);
    }
  }
  return problems;
}

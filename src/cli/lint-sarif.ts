import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FileFinding } from '../../services/preflight/lint-files/index.js';
import { RULE_CATALOG, ruleDocPath, ruleLevel, type RuleLevel } from '../../services/preflight/sql-analysis/rule-catalog.js';
import { PROJECT_ROOT } from '../../database/paths.js';

// SARIF 2.1.0 for GitHub code scanning: one rule descriptor per lint rule
// (its doc page as help), one result per finding at its file and line, an
// acknowledged finding as an in-source suppression with its reason.

export interface SarifInput {
  findings: FileFinding[];
  version: string;
  cwd: string;
  method: string;
  notes: string[];
  ruleLevels: Readonly<Record<string, RuleLevel>> | undefined;
}

function sarifLevel(level: RuleLevel | undefined): 'error' | 'warning' | 'none' {
  return level === 'error' ? 'error' : level === 'off' ? 'none' : 'warning';
}

function docPage(rule: string): string | undefined {
  const file = join(PROJECT_ROOT, ruleDocPath(rule));
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** A path relative to the checkout root, with forward slashes, as code scanning matches it. */
function repoPath(path: string, cwd: string): string {
  const rel = relative(cwd, join(cwd, path.startsWith(sep) ? relative(cwd, path) : path));
  return rel.split(sep).join('/');
}

export function toSarif(input: SarifInput): unknown {
  const ids = [...new Set([...Object.keys(RULE_CATALOG), ...input.findings.map((f) => f.rule)])];
  const rules = ids.map((id) => {
    const info = RULE_CATALOG[id];
    const level = ruleLevel(id, input.ruleLevels);
    const page = docPage(id);
    return {
      id,
      shortDescription: { text: info?.title ?? id },
      ...(page ? { help: { text: `See ${ruleDocPath(id)}.`, markdown: page } } : {}),
      defaultConfiguration: { enabled: level !== 'off', level: sarifLevel(level ?? 'error') },
      properties: { category: info?.category ?? 'preflight', tags: ['postgresql', 'migration', info?.category ?? 'preflight'] },
    };
  });
  const index = new Map(ids.map((id, i) => [id, i]));
  const results = input.findings.map((f) => ({
    ruleId: f.rule,
    ruleIndex: index.get(f.rule)!,
    level: f.severity === 'error' ? 'error' : 'warning',
    message: { text: f.statement ? `${f.message}\nStatement: ${f.statement}` : f.message },
    locations: [{
      physicalLocation: {
        artifactLocation: { uri: repoPath(f.path, input.cwd), uriBaseId: '%SRCROOT%' },
        region: { startLine: f.line },
      },
    }],
    // Stable across runs and line moves, so code scanning tracks one alert per statement.
    partialFingerprints: { 'sfmStatement/v1': createHash('sha256').update(`${f.rule}\0${f.migration}\0${f.statement}`).digest('hex') },
    ...(f.acknowledged ? { suppressions: [{ kind: 'inSource', justification: f.acknowledged.reason }] } : {}),
  }));
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'sfm lint', version: input.version, rules } },
      originalUriBaseIds: { '%SRCROOT%': { uri: pathToFileURL(`${input.cwd}${sep}`).href } },
      results,
      properties: { method: input.method, notes: input.notes },
    }],
  };
}

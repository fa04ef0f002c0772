// Recall and precision of the preflight linter on squawk's own rule tests.
//
//   npm run bench:squawk -- /path/to/squawk-checkout
//
// squawk (github.com/sbdchd/squawk) is read from a checkout kept outside this
// repository; none of its code or test SQL is copied here. Each test case is
// linted as a .sql migration, statement by statement as psql would send it:
// a pgm.noTransaction()-style migration, or a transactional one when the test
// sets squawk's assume_in_transaction. Tables are assumed to exist unless the
// case creates them (squawk knows no schema either), every rule is on, and the
// server version is the test's pg_version (default 15, like squawk's).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { splitStatements } from '../services/preflight/sql-analysis/index.js';
import { lintMigration } from '../services/preflight/sql-analysis/lint.js';
import { RULE_CATALOG, type RuleLevel } from '../services/preflight/sql-analysis/rule-catalog.js';
import { squawkCases, type SquawkCase } from './squawk/cases.js';
import { MAPPING } from './squawk/mapping.js';

const ALL_ON: Record<string, RuleLevel> = Object.fromEntries(Object.keys(RULE_CATALOG).map((id) => [id, 'warning']));

async function firedRules(c: SquawkCase): Promise<Set<string>> {
  // squawk's own switch back to "not in a transaction" for one file.
  const transactional = c.assumeInTransaction && !/squawk-disable-assume-in-transaction/.test(c.sql);
  let statements: string[];
  try {
    statements = (await splitStatements(c.sql)).map((s) => s.text);
  } catch {
    statements = [c.sql];
  }
  const findings = await lintMigration({
    migration: `${c.file}:${c.test}`,
    file: 'case.sql',
    statements,
    transactional,
    existingTables: new Set(),
    assumeTablesExist: true,
    serverMajor: c.pgVersion,
    source: '',
    ruleLevels: ALL_ON,
  });
  return new Set(findings.map((f) => f.rule));
}

interface Tally {
  tp: number;
  fn: number;
  fp: number;
  tn: number;
  misses: string[];
  falseAlarms: string[];
}

async function main(): Promise<void> {
  const squawk = process.argv[2] ?? process.env.SQUAWK_DIR;
  if (!squawk) {
    // `npm run bench` runs every bench without arguments: say why this one did nothing instead of failing the set.
    process.stderr.write('bench:squawk skipped: pass the path of a squawk checkout (npm run bench:squawk -- /path/to/squawk) or set SQUAWK_DIR\n');
    return;
  }
  const cases = await squawkCases(squawk);
  const byRule = new Map<string, Tally>();
  const unmapped = new Set<string>();
  const total: Tally = { tp: 0, fn: 0, fp: 0, tn: 0, misses: [], falseAlarms: [] };
  for (const c of cases) {
    const mapping = MAPPING.find((m) => m.squawk === c.rule);
    if (!mapping) {
      unmapped.add(c.rule);
      continue;
    }
    const fired = await firedRules(c);
    const hit = mapping.ours.some((r) => fired.has(r));
    const tally = byRule.get(c.rule) ?? { tp: 0, fn: 0, fp: 0, tn: 0, misses: [], falseAlarms: [] };
    const label = `${c.file.replace(/\.rs$/, '')}::${c.test}`;
    if (c.expect === 'error') {
      if (hit) tally.tp++;
      else tally.misses.push(label);
    } else if (hit) tally.falseAlarms.push(label);
    else tally.tn++;
    tally.fn = tally.misses.length;
    tally.fp = tally.falseAlarms.length;
    byRule.set(c.rule, tally);
  }
  for (const t of byRule.values()) {
    total.tp += t.tp;
    total.fn += t.fn;
    total.fp += t.fp;
    total.tn += t.tn;
    total.misses.push(...t.misses);
    total.falseAlarms.push(...t.falseAlarms);
  }
  const recall = total.tp / (total.tp + total.fn);
  const precision = total.tp / (total.tp + total.fp);
  const safetyRules = MAPPING.filter((m) => m.safety).map((m) => m.squawk);
  const lines = [
    `squawk cases: ${cases.length} (${[...byRule.values()].reduce((n, t) => n + t.tp + t.fn + t.fp + t.tn, 0)} mapped, ${unmapped.size} unmapped rules: ${[...unmapped].join(', ') || 'none'})`,
    `recall ${recall.toFixed(3)} (${total.tp}/${total.tp + total.fn}), precision ${precision.toFixed(3)} (${total.tp}/${total.tp + total.fp})`,
    `safety rules mapped: ${safetyRules.length}`,
    '',
    '| squawk rule | ours | caught | missed | false alarms | quiet on ok |',
    '|---|---|---|---|---|---|',
    ...MAPPING.map((m) => {
      const t = byRule.get(m.squawk) ?? { tp: 0, fn: 0, fp: 0, tn: 0, misses: [], falseAlarms: [] };
      return `| ${m.squawk}${m.safety ? '' : ' (style)'} | ${m.ours.join(', ')} | ${t.tp} | ${t.fn} | ${t.fp} | ${t.tn} |`;
    }),
    '',
    `missed: ${total.misses.join(', ') || 'none'}`,
    `false alarms: ${total.falseAlarms.join(', ') || 'none'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  await writeFile(
    join(process.cwd(), 'bench/results/squawk-compare.json'),
    `${JSON.stringify({ cases: cases.length, recall, precision, ...total, rules: Object.fromEntries(byRule) }, null, 2)}\n`,
  );
}

await main();

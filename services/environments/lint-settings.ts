import { RULE_IDS, type RuleLevel } from '../preflight/sql-analysis/rule-catalog.js';
import { ConfigError } from './config-error.js';
import { isObject } from './config-values.js';

// Per-environment lint settings, like squawk's excluded rules: `lint: {rules:
// {'ban-drop-column': 'warning', 'prefer-timestamptz': 'error'}}`. A level
// overrides the rule's default in this environment's preflight ('off' drops
// its findings). Unknown rule ids are refused, so a typo cannot silently
// leave a rule at its default.

export interface LintSettings {
  rules: Readonly<Record<string, RuleLevel>>;
}

const LEVELS: readonly RuleLevel[] = ['error', 'warning', 'off'];

export function parseLintSettings(value: unknown, key: string): LintSettings {
  if (value === undefined) return { rules: {} };
  if (!isObject(value)) throw new ConfigError(key, 'must be an object');
  for (const field of Object.keys(value)) if (field !== 'rules') throw new ConfigError(`${key}.${field}`, 'is not a known setting (known: rules)');
  if (value.rules === undefined) return { rules: {} };
  if (!isObject(value.rules)) throw new ConfigError(`${key}.rules`, 'must be an object of rule id → "error", "warning" or "off"');
  const rules: Record<string, RuleLevel> = {};
  for (const [rule, level] of Object.entries(value.rules)) {
    if (!RULE_IDS.includes(rule)) throw new ConfigError(`${key}.rules.${rule}`, 'is not a lint rule (the rules are listed in docs/rules/README.md)');
    if (!LEVELS.includes(level as RuleLevel)) throw new ConfigError(`${key}.rules.${rule}`, `must be one of: ${LEVELS.join(', ')}`);
    rules[rule] = level as RuleLevel;
  }
  return { rules };
}

import type { LintFinding } from '../sql-analysis/index.js';
import type { RuleLevel } from '../sql-analysis/rule-catalog.js';

export interface FileFinding extends LintFinding {
  /** The migration file, as given on the command line (or directory + name). */
  path: string;
  /** 1-based line the statement starts on (1 when it cannot be told, e.g. SQL a JS builder generated). */
  line: number;
}

export interface LintRunOptions {
  ruleLevels?: Readonly<Record<string, RuleLevel>>;
}

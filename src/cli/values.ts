import { InvalidArgumentError } from 'commander';

// Option value parsers. When the command line is only being checked (for
// instance a workflow file's `sfm ... --limit ${{ inputs.limit }}`), a value
// that is wholly a shell or Actions placeholder cannot be judged and passes.

export interface ValueContext {
  /** True while validating a command line without running it. */
  checking: boolean;
}

const PLACEHOLDER = /^(\$\{\{[^}]*\}\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\$\([^)]*\))$/;

export function isPlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value.trim());
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30m", "2s", "500ms", "1h", "1.5m"; a bare number means seconds. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNITS[match[2] ?? 's']!;
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function durationParser(ctx: ValueContext, min: number, max: number) {
  return (value: string): number => {
    if (ctx.checking && isPlaceholder(value)) return min;
    const ms = parseDuration(value);
    if (ms === null) throw new InvalidArgumentError('Expected a duration such as 500ms, 2s, 30m or 1h.');
    if (ms < min || ms > max) throw new InvalidArgumentError(`Expected a duration from ${formatDuration(min)} to ${formatDuration(max)}.`);
    return ms;
  };
}

export function intParser(ctx: ValueContext, min: number, max: number) {
  return (value: string): number => {
    if (ctx.checking && isPlaceholder(value)) return min;
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    return n;
  };
}

export function choiceParser<T extends string>(ctx: ValueContext, choices: readonly T[]) {
  return (value: string): T => {
    if (ctx.checking && isPlaceholder(value)) return choices[0]!;
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`Allowed choices are ${choices.join(', ')}.`);
    return value as T;
  };
}

export function isoTimeParser(ctx: ValueContext) {
  return (value: string): string => {
    if (ctx.checking && isPlaceholder(value)) return value;
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(value) || Number.isNaN(Date.parse(value))) {
      throw new InvalidArgumentError('Expected an ISO 8601 time with a zone, e.g. 2026-03-01T02:30:00Z.');
    }
    return value;
  };
}

/** Free text that must not be empty (a reason, a description). */
export function textParser(max: number) {
  return (value: string): string => {
    if (!value.trim()) throw new InvalidArgumentError('Must not be empty.');
    if (value.length > max) throw new InvalidArgumentError(`At most ${max} characters.`);
    return value;
  };
}

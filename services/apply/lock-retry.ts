export interface RetryBudget {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No retry may start after this (the window's end); null = attempts only. */
  deadline: Date | null;
}

/**
 * Exponential backoff with "equal jitter": half the capped delay is fixed and
 * half random, so retries from several runs spread out but never collapse to 0.
 */
export function backoffDelay(attempt: number, budget: Pick<RetryBudget, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const capped = Math.min(budget.maxDelayMs, budget.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped / 2 + random() * (capped / 2));
}

/** The delay before retry `attempt` (1-based), or null when the budget does not allow it. */
export function nextRetryDelay(attempt: number, budget: RetryBudget, now = Date.now()): number | null {
  if (attempt >= budget.attempts) return null;
  const delay = backoffDelay(attempt, budget);
  if (budget.deadline && now + delay >= budget.deadline.getTime()) return null;
  return delay;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

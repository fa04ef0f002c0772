/**
 * At most `size` of the work given to run() at once, the rest waiting in the
 * order it came: for jobs that each hold a pooled connection for their whole
 * length and need more while they run (see preflight-service.ts).
 */
export function slots(size: number) {
  let busy = 0;
  const waiting: Array<() => void> = [];
  return async function run<T>(fn: () => Promise<T>): Promise<T> {
    if (busy >= size) await new Promise<void>((resolve) => waiting.push(resolve));
    else busy++;
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter (busy stays), or frees.
      const next = waiting.shift();
      if (next) next();
      else busy--;
    }
  };
}

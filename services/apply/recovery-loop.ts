import type { Logger } from '../logger.js';

/**
 * Every replica sweeps in-flight runs whose lease lapsed, whether its
 * scheduler is on or off: a watch, rollback or restore whose process died is
 * carried on or ended by whichever replica gets the run's lock first (decided
 * in SQL, services/apply/reconcile.ts). The timer only ticks.
 */
export function createRecoveryLoop(sweep: () => Promise<unknown>, everyMs: number, log: Logger) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  const tick = () => {
    if (running) return;
    running = sweep().then(() => undefined, (err) => log.error({ err }, 'recovery sweep failed; retrying at the next tick')).finally(() => { running = null; });
  };
  return {
    /** Idempotent. */
    start(): void {
      if (timer) return;
      timer = setInterval(tick, everyMs);
      timer.unref();
    },
    /** Idempotent; waits for a sweep in progress. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}

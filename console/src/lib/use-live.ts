import { useEffect, useRef } from 'preact/hooks';
import { follow } from '../api/stream.js';
import type { AuditEvent } from '../api/types.js';
import { useSession } from '../session-context.js';

/** Follows the event stream while the page is shown; `onEvent` and `onPoll` may change between renders. */
export function useLive(filter: { environment?: string; run?: string; after?: number } | null, onEvent: (e: AuditEvent) => void, onPoll: () => void): void {
  const { setLive } = useSession();
  const handlers = useRef({ onEvent, onPoll });
  handlers.current = { onEvent, onPoll };
  // `after` only matters when the stream opens: later reloads do not reconnect it.
  const key = filter ? `${filter.environment ?? ''}|${filter.run ?? ''}` : null;
  useEffect(() => {
    if (!filter) return undefined;
    const stop = follow({
      ...filter,
      onEvent: (e) => handlers.current.onEvent(e),
      onPoll: () => handlers.current.onPoll(),
      onState: setLive,
    });
    return () => {
      stop();
      setLive(null);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
}

import { useState } from 'preact/hooks';
import type { AuditEvent } from '../../api/types.js';
import { Section, Status, Time } from '../../components/ui.js';

function detailText(e: AuditEvent): string {
  const d = e.details;
  const parts: string[] = [];
  for (const key of ['migration', 'role', 'comment', 'reason', 'mode', 'code', 'detail', 'message', 'id']) {
    const v = d[key];
    if (typeof v === 'string' && v) parts.push(`${key}: ${v}`);
  }
  return parts.join(' · ');
}

/** The run's audit trail, oldest first: status changes stand out, the rest is listed between. */
export function Timeline({ events }: { events: AuditEvent[] }) {
  const [showNotifications, setShow] = useState(false);
  const shown = events.filter((e) => showNotifications || !e.type.startsWith('notification.'));
  return (
    <Section
      title="Timeline"
      id="timeline"
      actions={
        <label class="inline">
          <input type="checkbox" checked={showNotifications} onChange={(e) => setShow((e.target as HTMLInputElement).checked)} /> Show webhook deliveries
        </label>
      }
    >
      <ol class="timeline">
        {shown.map((e) => (
          <li key={e.id} class={e.to ? 'transition' : 'event'} data-event-type={e.type}>
            <Time iso={e.at} />{' '}
            {e.to ? <><Status status={e.to} /> </> : null}
            <span class="event-type">{e.type}</span> <span class="muted">by {e.actor}</span>
            {detailText(e) ? <div class="event-detail">{detailText(e)}</div> : null}
          </li>
        ))}
      </ol>
    </Section>
  );
}

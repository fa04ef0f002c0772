import type { Environment, Span } from '../api/types.js';

const DAY = 86_400_000;

interface Segment {
  x: number;
  width: number;
  start: Date;
  end: Date;
}

function clip(spans: Array<{ start: Date; end: Date }>, from: number, to: number, width: number): Segment[] {
  const scale = width / (to - from);
  return spans
    .filter((s) => s.end.getTime() > from && s.start.getTime() < to)
    .map((s) => {
      const a = Math.max(from, s.start.getTime());
      const b = Math.min(to, s.end.getTime());
      return { x: (a - from) * scale, width: Math.max(1, (b - a) * scale), start: s.start, end: s.end };
    });
}

const fmt = (d: Date) => d.toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/**
 * The next days as a strip: maintenance windows (freezes already cut out by
 * the API) and the freezes themselves, drawn in SVG (no inline style needed)
 * and listed as text for screen readers and phones.
 */
export function CalendarStrip({ env, windows, days = 7, now = new Date() }: { env: Environment; windows: Span[]; days?: number; now?: Date }) {
  const width = 700;
  const from = now.getTime();
  const to = from + days * DAY;
  const open = clip(windows.map((w) => ({ start: new Date(w.start), end: new Date(w.end) })), from, to, width);
  const frozen = clip(env.freezes.map((f) => ({ start: new Date(f.from), end: new Date(f.to) })), from, to, width);
  const ticks = Array.from({ length: days + 1 }, (_, i) => {
    const d = new Date(from + i * DAY);
    d.setHours(0, 0, 0, 0);
    return d.getTime() < from ? null : d;
  }).filter((d): d is Date => d !== null);
  const anytime = env.windows.length === 0;
  const titleId = `strip-${env.name}`;
  return (
    <figure class="strip">
      <svg viewBox={`0 0 ${width} 46`} role="img" aria-labelledby={titleId} preserveAspectRatio="none" class="strip-svg">
        <title id={titleId}>{`${env.name}: ${anytime ? 'no windows (any time outside freezes)' : `${open.length} window(s)`} and ${frozen.length} freeze(s) in the next ${days} days`}</title>
        <rect x="0" y="8" width={width} height="24" class={anytime ? 'strip-open' : 'strip-closed'} />
        {open.map((s, i) => <rect key={`w${i}`} x={s.x} y="8" width={s.width} height="24" class="strip-open"><title>{`Window ${fmt(s.start)} – ${fmt(s.end)}`}</title></rect>)}
        {frozen.map((s, i) => <rect key={`f${i}`} x={s.x} y="8" width={s.width} height="24" class="strip-freeze"><title>{`Freeze ${fmt(s.start)} – ${fmt(s.end)}`}</title></rect>)}
        {ticks.map((d) => {
          const x = ((d.getTime() - from) / (to - from)) * width;
          return <g key={d.getTime()}><line x1={x} x2={x} y1="4" y2="36" class="strip-tick" /><text x={x + 3} y="44" class="strip-label">{d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' })}</text></g>;
        })}
      </svg>
      <figcaption>
        <span class="key key-open">open window</span> <span class="key key-freeze">freeze</span> <span class="key key-closed">closed</span>
        <ul class="plain small">
          {anytime ? <li>No windows configured: applies may start any time outside a freeze.</li> : windows.slice(0, 5).map((w) => <li key={w.start}>Window {fmt(new Date(w.start))} – {fmt(new Date(w.end))}</li>)}
          {env.freezes.filter((f) => new Date(f.to).getTime() > from).map((f) => <li key={f.from}>Freeze {fmt(new Date(f.from))} – {fmt(new Date(f.to))}: {f.reason}</li>)}
        </ul>
      </figcaption>
    </figure>
  );
}

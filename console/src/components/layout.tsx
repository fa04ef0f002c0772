import type { ComponentChildren } from 'preact';
import type { LiveState } from '../api/stream.js';
import { useSession } from '../session-context.js';

const NAV = [
  { section: 'runs', label: 'Runs' },
  { section: 'environments', label: 'Environments' },
  { section: 'backfills', label: 'Backfills' },
  { section: 'rules', label: 'Preflight rules' },
];

const LIVE_TEXT: Record<LiveState, string> = {
  connecting: 'Connecting to live updates…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  polling: 'Refreshing every 5 s (no live stream)',
};

export function Layout({ section, live, children }: { section: string; live: LiveState | null; children: ComponentChildren }) {
  const { me, signOut } = useSession();
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <div class="brand">StarForge migrations</div>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.section}>
                <a href={`#/${item.section}`} aria-current={section === item.section || (section === '' && item.section === 'runs') ? 'page' : undefined}>{item.label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          {live ? <span class={`live live-${live}`} role="status">{LIVE_TEXT[live]}</span> : null}
          <span class="subject" data-testid="subject">{me.subject}</span>
          <span class="roles">({me.roles.join(', ')})</span>
          <button type="button" class="secondary" onClick={() => signOut()}>Sign out</button>
        </div>
      </header>
      <main id="main" class="page" tabIndex={-1}>{children}</main>
    </>
  );
}

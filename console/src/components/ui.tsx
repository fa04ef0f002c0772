import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { describeError } from '../api/client.js';
import { label, tone, when } from '../lib/format.js';

// Every value from the API is rendered as a text node: Preact escapes it, and
// the page's Trusted Types policy would refuse any HTML string anyway.

export function Status({ status }: { status: string }) {
  return <span class={`badge badge-${tone(status)}`}>{label(status)}</span>;
}

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span>—</span>;
  return <time dateTime={iso} title={iso}>{when(iso)}</time>;
}

export function ErrorNote({ error, what }: { error: unknown; what?: string }) {
  if (!error) return null;
  return <p class="error" role="alert">{what ? `${what}: ` : ''}{describeError(error)}</p>;
}

export function Section({ title, id, children, actions }: { title: string; id?: string; children: ComponentChildren; actions?: ComponentChildren }) {
  const headingId = `${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-heading`;
  return (
    <section class="card" aria-labelledby={headingId} id={id}>
      <div class="card-head">
        <h2 id={headingId}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A table that scrolls sideways on a narrow screen, reachable by keyboard. */
export function TableWrap({ label: name, children }: { label: string; children: ComponentChildren }) {
  return <div class="table-wrap" role="region" aria-label={name} tabIndex={0}>{children}</div>;
}

export function Loading({ what }: { what: string }) {
  return <p class="muted" role="status">Loading {what}…</p>;
}

export interface Action {
  busy: boolean;
  error: unknown;
  done: string | null;
  run(fn: () => Promise<string | void>): Promise<void>;
}

/** Busy/error/done state of one form's submit. */
export function useAction(): Action {
  const [state, setState] = useState<{ busy: boolean; error: unknown; done: string | null }>({ busy: false, error: null, done: null });
  return {
    ...state,
    async run(fn) {
      setState({ busy: true, error: null, done: null });
      try {
        const done = await fn();
        setState({ busy: false, error: null, done: done ?? null });
      } catch (error) {
        setState({ busy: false, error, done: null });
      }
    },
  };
}

export function ActionResult({ action, what }: { action: Action; what: string }) {
  return (
    <div aria-live="polite">
      {action.error ? <p class="error" role="alert">{what} refused: {describeError(action.error)}</p> : null}
      {action.done ? <p class="ok">{action.done}</p> : null}
    </div>
  );
}

export function Field({ id, label: text, hint, children }: { id: string; label: string; hint?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{text}</label>
      {children}
      {hint ? <p class="hint" id={`${id}-hint`}>{hint}</p> : null}
    </div>
  );
}

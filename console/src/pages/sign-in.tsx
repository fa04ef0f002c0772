import { useState } from 'preact/hooks';
import { ApiError, describeError, getJson, ServiceDownError } from '../api/client.js';
import { storeToken } from '../api/session.js';
import type { Me } from '../api/types.js';

function explain(err: unknown): string {
  if (err instanceof ApiError && err.status === 401) return 'That token was not accepted (401). Check that you pasted the whole token for this service.';
  if (err instanceof ServiceDownError) return err.message;
  return describeError(err);
}

export function SignIn({ onSignedIn, notice, initialError }: { onSignedIn(me: Me): void; notice: string | null; initialError: unknown }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(initialError);

  async function submit(event: Event) {
    event.preventDefault();
    const value = token.trim();
    if (!value) return;
    setBusy(true);
    setError(null);
    try {
      const me = await getJson<Me>('/v1/me', { token: value });
      storeToken(value);
      setToken('');
      onSignedIn(me);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" class="page sign-in">
      <h1>StarForge migrations console</h1>
      {notice ? <p class="ok" role="status">{notice}</p> : null}
      <form onSubmit={submit} class="card">
        <div class="field">
          <label for="token">Bearer token</label>
          <input
            id="token"
            name="token"
            type="password"
            autoComplete="off"
            spellcheck={false}
            required
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
            aria-describedby="token-hint"
          />
          <p class="hint" id="token-hint">Paste the token once. It is kept only in this browser tab (sessionStorage) and sent as Authorization: Bearer; Sign out or closing the tab forgets it.</p>
        </div>
        <button type="submit" disabled={busy}>{busy ? 'Checking…' : 'Sign in'}</button>
        {error ? <p class="error" role="alert">{explain(error)}</p> : null}
      </form>
    </main>
  );
}

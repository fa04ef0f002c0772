import { useEffect, useState } from 'preact/hooks';
import { getJson, onUnauthorized } from './api/client.js';
import { clearToken, storedToken } from './api/session.js';
import type { LiveState } from './api/stream.js';
import type { Me } from './api/types.js';
import { Layout } from './components/layout.js';
import { ErrorNote, Loading } from './components/ui.js';
import { useRoute } from './lib/router.js';
import { BackfillsPage } from './pages/backfills.js';
import { EnvironmentsPage } from './pages/environments.js';
import { RulesPage } from './pages/rules.js';
import { RunPage } from './pages/run.js';
import { RunsPage } from './pages/runs.js';
import { SignIn } from './pages/sign-in.js';
import { Session } from './session-context.js';

export function App() {
  const route = useRoute();
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(storedToken() !== null);
  const [startError, setStartError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [live, setLive] = useState<LiveState | null>(null);

  const signOut = (message?: string) => {
    clearToken();
    setMe(null);
    setNotice(message ?? 'Signed out. The token was removed from this tab.');
  };

  useEffect(() => onUnauthorized(() => signOut('The service no longer accepts this token (401). Sign in again.')), []);

  // A reload keeps the tab's session: check the stored token once.
  useEffect(() => {
    if (!checking) return;
    getJson<Me>('/v1/me').then(
      (found) => { setMe(found); setChecking(false); },
      (err) => { setStartError(err); setChecking(false); },
    );
  }, []);

  if (checking) return <main id="main" class="page"><Loading what="your session" /></main>;
  if (!me) {
    return (
      <SignIn
        notice={notice}
        initialError={startError}
        onSignedIn={(found) => { setMe(found); setNotice(null); setStartError(null); }}
      />
    );
  }

  const [section = 'runs', id] = route.path;
  let page;
  if (section === 'runs' && id) page = <RunPage key={id} id={id} />;
  else if (section === 'environments') page = <EnvironmentsPage />;
  else if (section === 'backfills') page = <BackfillsPage query={route.query} />;
  else if (section === 'rules') page = <RulesPage focus={id} />;
  else if (section === 'runs' || section === '') page = <RunsPage query={route.query} />;
  else page = <ErrorNote error={new Error(`No page "${section}".`)} />;

  return (
    <Session.Provider value={{ me, signOut, setLive }}>
      <Layout section={section} live={live}>{page}</Layout>
    </Session.Provider>
  );
}

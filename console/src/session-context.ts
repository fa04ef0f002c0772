import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { LiveState } from './api/stream.js';
import type { Me } from './api/types.js';

export interface SessionValue {
  me: Me;
  signOut(message?: string): void;
  setLive(state: LiveState | null): void;
}

export const Session = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const value = useContext(Session);
  if (!value) throw new Error('useSession outside a signed-in page');
  return value;
}

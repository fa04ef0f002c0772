import type { Command } from 'commander';
import { createClient, type Client } from './client.js';
import { resolveConnection } from './config.js';
import type { ValueContext } from './values.js';

// What a command needs at run time, and the split every action follows:
// validate the parsed options synchronously (usage errors, also while only
// checking a command line), then do the work against the API.

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export interface Runtime extends ValueContext {
  env: NodeJS.ProcessEnv;
  io: Io;
  version: string;
  /** Secrets (the token) that output must never contain; filled once it is read. */
  secrets: string[];
}

export interface Globals {
  json: boolean;
  url?: string;
}

export interface Session {
  client: Client;
  json: boolean;
  io: Io;
  /** --json: the value as JSON on stdout; otherwise the human text. */
  print(value: unknown, human: () => string): void;
}

export function globalsOf(command: Command): Globals {
  const all = command.optsWithGlobals() as Partial<Globals>;
  return { json: all.json === true, url: all.url };
}

export function openSession(rt: Runtime, globals: Globals): Session {
  const conn = resolveConnection(rt.env, globals.url);
  rt.secrets.push(conn.token);
  const client = createClient(conn, `sfm/${rt.version}`);
  return {
    client,
    json: globals.json,
    io: rt.io,
    print(value, human) {
      rt.io.out(globals.json ? `${JSON.stringify(value, null, 2)}\n` : human());
    },
  };
}

export type Work = (session: Session) => Promise<void>;

/**
 * A commander action: `prepare` receives commander's arguments (positionals,
 * options, the command), throws UsageError for bad combinations and returns
 * the work, which runs only when the command line is not just being checked.
 */
export function action<A extends unknown[]>(rt: Runtime, prepare: (...args: A) => Work): (...args: A) => Promise<void> | undefined {
  return (...args: A) => {
    const work = prepare(...args);
    if (rt.checking) return undefined;
    const command = args[args.length - 1] as Command;
    return work(openSession(rt, globalsOf(command)));
  };
}

export const enc = encodeURIComponent;

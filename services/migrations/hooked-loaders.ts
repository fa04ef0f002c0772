import { basename, extname } from 'node:path';
import type { LoaderStrategies } from './loader.js';

// One node-pg-migrate runner call can run a whole batch of migrations, which
// keeps its fixed cost (listing, reading and hashing every file, reading the
// history) out of each migration. The runner gives no hook between two
// migrations, but it calls each migration's up or down function (which only
// collects SQL) right after the previous migration committed and before its
// own first statement. Wrapping those functions gives that hook, and tells
// which migration is starting even when its function throws before any SQL.

export interface MigrationHooks {
  /** `name` starts, after the one before it committed; it may query the same session. */
  starting(name: string): Promise<void>;
}

type Action = (pgm: unknown, run?: () => void) => unknown;

function wrap(action: unknown, name: string, hooks: MigrationHooks): unknown {
  if (typeof action !== 'function') return action;
  const fn = action as Action;
  // Always one argument: node-pg-migrate awaits it (a callback-style original, length 2, is awaited through its callback here).
  return async (pgm: unknown) => {
    await hooks.starting(name);
    if (fn.length === 2) await new Promise<void>((resolve) => void fn(pgm, resolve));
    else await fn(pgm);
  };
}

function wrapActions(actions: Record<string, unknown>, name: string, hooks: MigrationHooks): Record<string, unknown> {
  const up = wrap(actions.up, name, hooks);
  // A down that is the up itself (node-pg-migrate's reverse mode) must stay the same function.
  const down = actions.down === actions.up ? up : wrap(actions.down, name, hooks);
  return { ...actions, up, down };
}

/** `loaders` whose migrations call `hooks` around their up or down function. */
export function hookedLoaders(loaders: LoaderStrategies, hooks: MigrationHooks): LoaderStrategies {
  return loaders.map((strategy) => {
    const inner = strategy.loader;
    // Ours are functions (loader.ts); node-pg-migrate's predefined ones cannot be wrapped.
    if (typeof inner !== 'function') throw new Error(`cannot hook node-pg-migrate's predefined loader for ${strategy.extensions.join(', ')}`);
    return {
      ...strategy,
      loader: async (filePaths: string[]) => (await inner(filePaths)).map((unit) => ({
        ...unit,
        actions: wrapActions(unit.actions as unknown as Record<string, unknown>, basename(unit.id, extname(unit.id)), hooks) as never,
      })),
    };
  });
}

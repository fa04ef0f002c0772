import { verifiedLoaders, type LoaderStrategies } from './loader.js';

/** Where node-pg-migrate reads migrations from for one runner call, and how. */
export interface MigrationSource {
  /** The directory node-pg-migrate lists. */
  dir: string;
  loaders: LoaderStrategies;
  /**
   * A sealed source's migrations, in run order: its directory holds exactly
   * these, so node-pg-migrate's own order check (the directory against the
   * target's history) cannot apply and the runner checks order itself.
   * null for a directory on disk.
   */
  sealed: string[] | null;
  /** Throws MigrationChangedError when a file no longer has the bytes it was sealed with; called right before each runner call. */
  verify(): Promise<void>;
  /** Removes whatever was written for this source; idempotent. */
  close(): Promise<void>;
}

/** Opens a source when a runner is about to need it (after the migration lock is taken). */
export type SourceOpener = () => Promise<MigrationSource>;

/**
 * The migrations directory as it is on disk: for replaying a target's applied
 * history on a rehearsal copy, and for tests. A migration named in `expected`
 * is refused unless its bytes match; the modules it imports are not checked.
 */
export function diskSource(dir: string, expected: ReadonlyMap<string, string> = new Map()): MigrationSource {
  return { dir, loaders: verifiedLoaders(expected), sealed: null, verify: async () => undefined, close: async () => undefined };
}

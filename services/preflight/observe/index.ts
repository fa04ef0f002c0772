// Observed effects: what each migration really did on the rehearsal copy.
//   const method = await installObserver(client, { url });   // once, on the throw-away database
//   await beginObserved(client, name); <run the migration's up>; const seen = await collectObserved(client, name);
//   findings = judgeObserved(allSeen, preExistingRelationsWithData);
export { installObserver, beginObserved, collectObserved } from './install.js';
export { judgeObserved, mergeObserved, type ObservedFinding } from './judge.js';
export { readPreExisting } from './pre-existing.js';
export type { Observation, ObserveMethod, PreExisting } from './types.js';

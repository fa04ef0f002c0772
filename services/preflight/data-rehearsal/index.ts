// The data-bearing rehearsal (preflight.data: 'sample' | 'full'), issue 18.
// In rehearsal.ts, after the schema seed and before the observer:
//   const data = env.preflight.data !== 'schema' ? await seedData({...}) : null;
// and around each UP migration:
//   const outcome = data ? await data.measure(name, client, (c) => runOne(c, ...)) : await runOne(client, ...);
// In build-report.ts: withoutCopiedValues(rehearsal) before anything quotes
// its messages, then dataRehearsalSection(rehearsal.data, impact) as the
// report's dataRehearsal, with dataRehearsalFindings / dataRehearsalNotes.
export { seedData, type SeedDataInput } from './seed.js';
export { DataRehearsal, type DataRehearsalResult } from './data-rehearsal.js';
export { dataRehearsalFindings, dataRehearsalNotes, dataRehearsalSection, withoutCopiedValues } from './report-section.js';
export { latestVerifiedBackup } from './latest-backup.js';
export type * from './types.js';

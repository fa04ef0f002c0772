import type pg from 'pg';
import { one, rows } from '../../database/db.js';
import { extensionsInfo, ledgerFor, longTransactions, serverFacts } from '../../database/sql/preflight.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { MigrationFile } from '../migrations/files.js';
import { toolMajorVersion } from '../pg-tools.js';
import { checkBackupRoom } from './backup-room.js';
import { etlTargetChecks } from './etl-checks.js';
import type { Finding, PreflightCheck } from './report.js';

export interface ServerFacts {
  version: string;
  version_num: number;
  max_connections: number;
  connections: number;
  role: string;
  superuser: boolean;
  can_create: boolean;
}

export interface CheckResults {
  facts: ServerFacts;
  checks: PreflightCheck[];
  findings: Finding[];
}

const EXTENSION_MITIGATION =
  'Runbook mitigation: check provider support; if the extension is unsupported use application-side UUID generation, ' +
  'or request the privilege (CREATE on the database for trusted extensions, else superuser); revert or skip the extension creation if planned.';

/**
 * What the checksum comparison covered: the applied migrations with a ledger
 * entry (the service applied them) were compared; those without one were
 * applied outside the service (node-pg-migrate by hand, an older tool) and
 * have nothing to compare their file with.
 */
function appliedChecksumsDetail(appliedNames: string[], ledger: Array<{ name: string }>, files: Map<string, string>, drifted: number): string {
  const ledgered = new Set(ledger.map((l) => l.name));
  const compared = appliedNames.filter((n) => ledgered.has(n) && files.has(n));
  const unledgered = appliedNames.filter((n) => !ledgered.has(n));
  if (appliedNames.length === 0) return 'No migration is applied yet: nothing to compare.';
  const parts = [
    drifted
      ? `${drifted} applied migration(s) changed since they ran`
      : compared.length
        ? `${compared.length} of ${appliedNames.length} applied migration(s) match their ledger checksums`
        : `none of the ${appliedNames.length} applied migration(s) has a ledger entry`,
  ];
  if (unledgered.length) {
    const list = unledgered.slice(0, 5).join(', ') + (unledgered.length > 5 ? `, … (${unledgered.length - 5} more)` : '');
    parts.push(`${unledgered.length} were applied outside the service (no ledger entry), so their files could not be checked: ${list}`);
  }
  const text = parts.join('; ');
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`;
}

export async function serverFactsOf(client: pg.ClientBase): Promise<ServerFacts> {
  return one<ServerFacts>(client, serverFacts());
}

/** Read-only checks against the real target, as the runbook's pre-flight checklist asks. */
export async function checkTarget(
  client: pg.ClientBase,
  control: pg.Pool,
  env: EnvironmentConfig,
  files: MigrationFile[],
  appliedNames: string[],
  extensions: string[],
  /** DATA_DIR, under which pg_dump backups go (default and relative backup.dir). */
  dataDir?: string,
  /** Tables the pending migrations create (the rehearsal's created.tables): what the ETL checks count as coming. */
  createdTables: readonly string[] = [],
): Promise<CheckResults> {
  const facts = await serverFactsOf(client);
  const major = Math.floor(facts.version_num / 10000);
  const checks: PreflightCheck[] = [{ id: 'connectivity', status: 'pass', detail: `Connected as ${facts.role} to PostgreSQL ${facts.version}.` }];
  const findings: Finding[] = [];
  const finding = (rule: string, severity: Finding['severity'], message: string, migration: string | null = null) =>
    findings.push({ rule, severity, migration, statement: null, message, acknowledged: null });

  // Extensions a pending migration creates must be available and creatable by this role.
  if (extensions.length) {
    const info = await rows<{ name: string; installed: boolean; trusted: boolean }>(client, extensionsInfo(extensions));
    for (const name of extensions) {
      const ext = info.find((i) => i.name === name);
      if (!ext) {
        finding('extension-unavailable', 'error', `Extension "${name}" is not available on the ${env.name} server. ${EXTENSION_MITIGATION}`);
        checks.push({ id: `extension:${name}`, status: 'fail', detail: 'not available on the server' });
      } else if (ext.installed) {
        checks.push({ id: `extension:${name}`, status: 'pass', detail: 'already installed' });
      } else if (facts.superuser || (ext.trusted && facts.can_create)) {
        checks.push({ id: `extension:${name}`, status: 'pass', detail: `available and ${facts.role} may create it` });
      } else {
        const why = ext.trusted ? `role ${facts.role} lacks the CREATE privilege on the database` : `it is not a trusted extension and role ${facts.role} is not a superuser`;
        finding('extension-privilege', 'error', `CREATE EXTENSION ${name} would fail on ${env.name}: ${why}. ${EXTENSION_MITIGATION}`);
        checks.push({ id: `extension:${name}`, status: 'fail', detail: why });
      }
    }
  }

  const usage = facts.connections / facts.max_connections;
  const connectionStatus = usage >= 0.9 ? 'fail' : usage >= 0.75 ? 'warn' : 'pass';
  checks.push({ id: 'connections', status: connectionStatus, detail: `${facts.connections} of max_connections ${facts.max_connections} in use.` });
  if (connectionStatus !== 'pass') {
    finding('connection-pressure', 'warning', `${facts.connections} of ${facts.max_connections} connections are in use; pause workers or use pgbouncer before applying (runbook: DB connection exhaustion).`);
  }

  const threshold = env.preflight.longTransactionSeconds;
  const long = await rows<{ pid: number; usename: string; state: string; seconds: number; query: string }>(client, longTransactions(threshold));
  checks.push({
    id: 'long-transactions',
    status: long.length ? 'warn' : 'pass',
    detail: long.length ? `${long.length} transaction(s) open longer than ${threshold} s.` : `No transaction open longer than ${threshold} s.`,
  });
  for (const tx of long) {
    finding('long-running-transaction', 'warning',
      `pid ${tx.pid} (${tx.usename}, ${tx.state}) has had a transaction open for ${tx.seconds} s; DDL would queue behind it and block other sessions. Query: ${tx.query}`);
  }

  // An applied migration whose file changed since the service applied it (checksum ledger).
  const ledger = await rows<{ name: string; sha256: string }>(control, ledgerFor(env.name));
  const byName = new Map(files.map((f) => [f.name, f.sha256]));
  const applied = new Set(appliedNames);
  const drifted = ledger.filter((l) => applied.has(l.name) && byName.has(l.name) && byName.get(l.name) !== l.sha256);
  checks.push({ id: 'applied-checksums', status: drifted.length ? 'fail' : 'pass', detail: appliedChecksumsDetail(appliedNames, ledger, byName, drifted.length) });
  for (const d of drifted) {
    finding('applied-migration-changed', 'error', `Migration ${d.name} was applied with sha256 ${d.sha256.slice(0, 12)}…, but its file now differs; restore the file or write a new migration for the change.`, d.name);
  }

  if (env.backup.method === 'pg_dump') {
    const tool = await toolMajorVersion('pg_dump');
    const ok = tool !== null && tool.major >= major;
    checks.push({ id: 'backup-tooling', status: ok ? 'pass' : 'fail', detail: tool ? `pg_dump ${tool.version} for a PostgreSQL ${major} server.` : 'pg_dump not found on PATH.' });
    if (!ok) finding('backup-tool-unavailable', 'error', tool ? `pg_dump ${tool.version} cannot dump a PostgreSQL ${major} server; install pg_dump ${major} or newer.` : 'pg_dump is not on PATH; no verified backup means no apply.');
  } else {
    checks.push({ id: 'backup-tooling', status: 'pass', detail: 'External snapshots: the configured commands run at apply time.' });
  }
  const room = dataDir === undefined ? null : await checkBackupRoom(client, control, env, dataDir);
  if (room) {
    checks.push(room.check);
    if (room.finding) findings.push(room.finding);
  }
  checks.push(...(await etlTargetChecks(client, env, createdTables)));
  return { facts, checks, findings };
}

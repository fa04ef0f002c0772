// The API's shapes as the console reads them (openapi/openapi.json is the contract).

export interface Capabilities {
  createRun: boolean;
  approveAs: Array<'engineering' | 'sre'>;
  acknowledgeFindings: boolean;
  manageOwnRuns: boolean;
  manageAnyRun: boolean;
  apply: boolean;
  applyOutsideWindow: boolean;
  requestRollback: boolean;
  approveRollback: boolean;
  controlEtl: boolean;
  controlBackfills: boolean;
}

export interface Me {
  subject: string;
  roles: string[];
  can: Capabilities;
}

export interface Approval {
  subject: string;
  role: string;
  decision: string;
  comment: string;
  digest: string;
  current: boolean;
  at: string;
}

export interface Run {
  id: string;
  environment: string;
  status: string;
  description: string;
  ticket: string | null;
  to: string | null;
  requestedBy: string;
  createdAt: string;
  updatedAt: string;
  schedule: { mode: string; at?: string };
  scheduledFor: string | null;
  migrations: Array<{ name: string; sha256: string }>;
  digest: string;
  requiredApprovals: string[];
  approvals: Approval[];
  backup: { id: string; method: string; sizeBytes: number | null; sha256: string | null; verifiedAt: string | null } | null;
  error: { code: string; message: string; phase?: string | null; migration?: string | null; statement?: string | null; sqlState?: string | null; partial?: string[] | null } | null;
}

export interface AuditEvent {
  id: number;
  runId: string | null;
  environment: string;
  type: string;
  actor: string;
  from: string | null;
  to: string | null;
  details: Record<string, unknown>;
  at: string;
}

export interface Finding {
  /** Names the finding for POST /v1/runs/:id/acknowledgements; absent in very old reports. */
  id?: string;
  rule: string;
  severity: 'error' | 'warning' | 'info';
  migration: string | null;
  statement: string | null;
  message: string;
  acknowledged: { reason: string; by: string | null; at: string | null; via: 'api' | 'file' } | null;
  docUrl?: string;
}

export interface Check {
  id: string;
  /** skip: not configured for this target (e.g. no StarForge ETL). */
  status: 'pass' | 'warn' | 'fail' | 'skip';
  detail: string;
}

export interface PreflightReport {
  outcome: 'passed' | 'failed';
  digest: string | null;
  migrations: Array<{ name: string; sha256: string }>;
  server: { version: string } | null;
  checks: Check[];
  findings: Finding[];
  rehearsal: { steps: Array<{ phase: string; migration: string; durationMs: number; ok: boolean }>; seededFrom: string; durationMs: number } | null;
  impact: {
    tables: Array<{ table: string; exists: boolean; rows: number; bytes: number }>;
    migrations: Array<{
      migration: string;
      transactional: boolean;
      rehearsalMs: number | null;
      estimatedMs: number;
      strongestLock: string;
      statements: Array<{ statement: string; lock: string; tables: string[]; rewritesTable: boolean; buildsIndex: boolean; scansTable: boolean; estimatedMs: number }>;
    }>;
    totalEstimatedMs: number;
    assumptions: string;
  } | null;
  notes: string[];
  startedAt: string;
  finishedAt: string;
}

export interface VerificationCheck {
  id: string;
  status: string;
  detail: string;
  query?: string;
}

export interface ApplyReport {
  outcome: string;
  actor: string;
  startedAt: string;
  finishedAt: string;
  backup: { id: string; method: string; sizeBytes: number | null; sha256: string | null; verifiedAt: string | null } | null;
  workers: { method: string; resumed: boolean; note: string | null } | null;
  migrations: Array<{ name: string; durationMs: number; attempts: number; transactional: boolean }>;
  lockRetries: number;
  failure: { code: string; message: string; phase: string; migration?: string | null; statement?: string | null; sqlState?: string | null } | null;
  verification: VerificationCheck[];
  smoke: { ran: boolean; ok: boolean; notConfigured?: boolean; detail: string; durationMs: number } | null;
  watch: { watchedSeconds: number; degraded: boolean; detail: string } | null;
  notes: string[];
}

export interface RollbackReport {
  mode: 'down' | 'restore';
  outcome: string;
  requestedBy: string;
  approvedBy: string;
  reason: string;
  startedAt: string;
  finishedAt: string;
  reverted: Array<{ name: string; durationMs: number }>;
  backupId: string | null;
  checks: Array<{ id: string; status: string; detail: string }>;
  failure: { code: string; message: string } | null;
  notes: string[];
}

export interface RunReport {
  apply: { createdAt: string; report: ApplyReport } | null;
  rollback: RollbackReport | null;
}

export interface RollbackRequest {
  id: string;
  runId: string;
  mode: string;
  status: string;
  requestedBy: string;
  reason: string;
  decidedBy: string | null;
  decisionComment: string | null;
  error: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
  /** The plan shown when it was asked for (GET /v1/runs/:id/rollback/plan); its approver approves planDigest. */
  plan?: RollbackPlan | null;
  planDigest?: string | null;
}

export interface AtRisk {
  kind: string;
  migration: string | null;
  table: string;
  column: string | null;
  rows: number | null;
  rowsExact: boolean;
  bytes: number | null;
}

export interface RollbackPlan {
  mode: 'down' | 'restore';
  digest: string;
  blockers: string[];
  down: { migrations: Array<{ name: string; reversible: boolean; sql: string[] | null; why?: string }>; drops: AtRisk[] } | null;
  restore: {
    backup: { id: string; ageSeconds: number };
    writesSinceBackup: { known: boolean; tables: Array<{ table: string; inserted: number; updated: number; deleted: number }>; total: { inserted: number; updated: number; deleted: number }; note: string | null };
    tablesDropped: AtRisk[];
  } | null;
  notes: string[];
}

export interface Span {
  start: string;
  end: string;
}

export interface Environment {
  name: string;
  configured: boolean;
  reachable: boolean;
  error: string | null;
  migrationsTable: string;
  applied: Array<{ name: string; runOn: string }>;
  pending: Array<{ name: string; sha256: string }>;
  requiredApprovals: string[];
  activeRun: { id: string; status: string } | null;
  windows: Array<{ cron: string; durationMinutes: number; timezone: string }>;
  freezes: Array<{ from: string; to: string; reason: string }>;
  activeFreeze: { from: string; to: string; reason: string } | null;
  windowOpen: boolean;
  currentWindow: Span | null;
  nextWindow: Span | null;
}

export interface EtlHealth {
  environment: string;
  backlog: number;
  oldestUnprocessedAgeSeconds: number;
  processedLastHour: number;
  failedLastHour: number;
  recentErrors: Array<{ id: string; snapshotId: string | null; errorType: string; message: string; createdAt: string }>;
  paused: boolean;
  pausedBy: string | null;
  pauseReason: string | null;
  changedAt: string | null;
}

export interface BackfillJob {
  id: string;
  environment: string;
  name: string;
  status: string;
  description: string | null;
  table: string;
  batchSize: number;
  maxRowsPerSecond: number | null;
  windowOnly: boolean;
  rowsDone: number;
  rowsFailed: number;
  rowsScanned: number;
  openFailures: number;
  remainingRows: number | null;
  progress: number | null;
  rowsPerSecond: number | null;
  waiting: string | null;
  createdBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  lastError: string | null;
}

export interface BackfillFailure {
  id: number;
  key: string;
  error: string;
  sqlstate: string | null;
  at: string;
  resolvedAt: string | null;
  resolvedBy: string | null;
}

export interface Waiting {
  approvals: Array<{ run: Run; asRoles: Array<'engineering' | 'sre'> }>;
  rollbacks: Array<{ run: Run; request: RollbackRequest }>;
}

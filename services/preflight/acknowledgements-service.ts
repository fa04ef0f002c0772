import { one, rows, transaction } from '../../database/db.js';
import { isPgError, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import { acknowledgementsOf, insertAcknowledgement, type AcknowledgementRow } from '../../database/sql/acknowledgements.js';
import { reinstateStandingApprovals } from '../approvals/standing.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { badRequest, conflict, forbidden } from '../errors.js';
import { sameSubject, type Principal, type Role } from '../principal.js';
import { activeRunConflict } from '../runs/active-conflict.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { applyApiAcks, NOT_ACKNOWLEDGEABLE, presentAcknowledgement, servedReport, type ApiAcknowledgement } from './api-acks.js';

export interface AcknowledgeInput {
  finding: string;
  reason: string;
}

// Roles that may accept a finding's risk: those that approve runs.
const ACKNOWLEDGING_ROLES: readonly Role[] = ['sre', 'engineering', 'admin'];
// While a preflight runs its report is being replaced; from approval on, the
// findings were already accepted (approvals need a passed preflight).
const ACKNOWLEDGEABLE_IN: readonly RunStatus[] = ['preflight_failed', 'awaiting_approval'];

/**
 * Acknowledgements of preflight findings through the API: an approver other
 * than the requester accepts one finding of the run's latest report, for its
 * digest, with a reason, audited in the same transaction. When that leaves a
 * preflight_failed run without an unacknowledged error, the run moves on to
 * awaiting_approval in that transaction too.
 */
export function createAcknowledgementsService(ctx: ServiceContext) {
  const { control } = ctx;

  async function acknowledge(runId: string, principal: Principal, input: AcknowledgeInput): Promise<ApiAcknowledgement> {
    const role = ACKNOWLEDGING_ROLES.find((r) => principal.roles.includes(r));
    if (!role) throw forbidden(`Acknowledging a finding needs one of the roles ${ACKNOWLEDGING_ROLES.join(', ')}; ${principal.subject} has ${principal.roles.join(', ')}.`);
    const reason = input.reason.trim();
    if (!reason) throw badRequest('"reason" must say why the risk is accepted; it is blank.', { errors: [{ path: 'body/reason', message: 'must not be blank' }] });
    let environment: string | undefined;
    try {
      return await transaction(control, async (client) => {
        const run = await lockRunForUpdate(client, runId);
        environment = run.environment;
        if (sameSubject(run.requested_by, principal.subject)) {
          throw forbidden(`${principal.subject} requested run ${runId} and cannot acknowledge its findings; ask another approver.`);
        }
        if (!ACKNOWLEDGEABLE_IN.includes(run.status)) {
          throw conflict(`Run ${runId} is ${run.status}; findings are acknowledged while it is ${ACKNOWLEDGEABLE_IN.join(' or ')}.`, { currentStatus: run.status });
        }
        const served = await servedReport(client, runId);
        const finding = served?.report.findings.find((f) => f.id === input.finding);
        if (!served || !finding) {
          throw conflict(`Finding ${input.finding} is not in the latest preflight report of run ${runId}; acknowledge a finding id from GET /v1/runs/${runId}/preflight.`);
        }
        const why = NOT_ACKNOWLEDGEABLE[finding.rule];
        if (why) throw conflict(`Finding ${finding.id} (${finding.rule}) cannot be acknowledged: ${why}.`, { rule: finding.rule });
        if (finding.acknowledged) {
          const by = finding.acknowledged.via === 'api' ? `by ${finding.acknowledged.by}` : 'by a lint-ack comment in the migration file';
          throw conflict(`Finding ${finding.id} (${finding.rule}) is already acknowledged ${by}.`);
        }
        const digest = served.report.digest ?? run.digest;
        const row = await one<AcknowledgementRow>(client, insertAcknowledgement({
          runId, digest, findingId: finding.id!, rule: finding.rule, migration: finding.migration, reason, subject: principal.subject, role,
        }));
        await appendEvent(client, {
          runId,
          environment: run.environment,
          type: 'finding.acknowledged',
          actor: principal.subject,
          details: { finding: finding.id, rule: finding.rule, migration: finding.migration, severity: finding.severity, role, reason, digest },
        });
        const after = applyApiAcks(served.stored, await rows<AcknowledgementRow>(client, acknowledgementsOf(runId, digest)));
        if (run.status === 'preflight_failed' && after.outcome === 'passed') {
          await transition(client, run, 'awaiting_approval', {
            actor: principal.subject,
            type: 'preflight.acknowledged',
            details: { digest, acknowledged: after.findings.filter((f) => f.acknowledged?.via === 'api').map((f) => f.id) },
            patch: { error: null },
          });
          await reinstateStandingApprovals(client, ctx.config.environments[run.environment], run, digest);
        }
        return presentAcknowledgement(row);
      });
    } catch (err) {
      if (isPgError(err, UNIQUE_VIOLATION) && err.constraint === 'finding_acknowledgements_once') {
        throw conflict(`Finding ${input.finding} is already acknowledged for this content of run ${runId}.`);
      }
      // Leaving preflight_failed takes the environment back, which the partial unique index refuses while another run holds it.
      if (isPgError(err, UNIQUE_VIOLATION) && err.constraint === 'runs_one_active_per_environment' && environment) {
        throw await activeRunConflict(control, environment, `acknowledging would make run ${runId} active again. Finish or cancel the other run first; nothing was recorded.`);
      }
      throw err;
    }
  }

  async function list(runId: string): Promise<ApiAcknowledgement[]> {
    return (await rows<AcknowledgementRow>(control, acknowledgementsOf(runId))).map(presentAcknowledgement);
  }

  return { acknowledge, list };
}

export type AcknowledgementsService = ReturnType<typeof createAcknowledgementsService>;

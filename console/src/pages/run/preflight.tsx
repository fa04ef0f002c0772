import type { PreflightReport, Run } from '../../api/types.js';
import { Section, Status, TableWrap, Time } from '../../components/ui.js';
import { bytes, count, duration } from '../../lib/format.js';
import { href } from '../../lib/router.js';
import { ruleDoc, squawkUrl } from '../../lib/rules.js';
import { AcknowledgeForm } from './acknowledge.js';

/** The migrations of the run with the SQL each ran in the preflight rehearsal. */
export function Migrations({ run, report }: { run: Run; report: PreflightReport | null }) {
  const impact = report?.impact?.migrations ?? [];
  return (
    <Section title={`Migrations (${run.migrations.length})`} id="migrations">
      {run.migrations.map((m) => {
        const rehearsed = impact.find((i) => i.migration === m.name);
        return (
          <details key={m.name} class="migration" open={run.migrations.length <= 3}>
            <summary>
              <span class="mono">{m.name}</span>
              {rehearsed ? <span class="muted"> — {rehearsed.strongestLock} lock, about {duration(rehearsed.estimatedMs)}{rehearsed.transactional ? '' : ', outside a transaction'}</span> : null}
            </summary>
            <p class="muted mono small">sha256 {m.sha256}</p>
            {rehearsed ? (
              rehearsed.statements.length === 0 ? <p class="muted">No SQL statement ran.</p> : rehearsed.statements.map((s, i) => (
                <figure key={i} class="sql">
                  <figcaption class="muted small">
                    Statement {i + 1}: {s.lock} lock{s.tables.length ? ` on ${s.tables.join(', ')}` : ''}{s.rewritesTable ? ', rewrites the table' : ''}{s.buildsIndex ? ', builds an index' : ''}{s.scansTable ? ', scans the table' : ''}
                  </figcaption>
                  <pre class="code">{s.statement}</pre>
                </figure>
              ))
            ) : <p class="muted">{report ? 'Not rehearsed.' : 'The SQL appears once preflight has rehearsed the migration.'}</p>}
          </details>
        );
      })}
    </Section>
  );
}

function RuleLink({ rule, docUrl }: { rule: string; docUrl?: string }) {
  const known = ruleDoc(rule);
  return (
    <>
      <a href={docUrl ?? href(`/rules/${rule}`)} class="mono">{rule}</a>
      {known?.squawk && !docUrl ? <> (<a href={squawkUrl(rule)} rel="noreferrer noopener" target="_blank">squawk</a>)</> : null}
    </>
  );
}

export function Preflight({ run, report, createdAt, onChange }: { run: Run; report: PreflightReport; createdAt: string; onChange(): void }) {
  const findings = report.findings;
  const impact = report.impact;
  return (
    <Section title="Preflight report" id="preflight">
      <p>
        <Status status={report.outcome} /> <span class="muted">on <Time iso={createdAt} />{report.server ? `, PostgreSQL ${report.server.version}` : ''}{report.rehearsal ? `, rehearsed in ${duration(report.rehearsal.durationMs)} (copy seeded from ${report.rehearsal.seededFrom})` : ''}</span>
      </p>
      <h3>Findings ({findings.length})</h3>
      {findings.length === 0 ? <p class="muted">No findings.</p> : (
        <TableWrap label="Preflight findings">
          <table>
            <thead><tr><th scope="col">Severity</th><th scope="col">Rule</th><th scope="col">Migration</th><th scope="col">Finding</th><th scope="col">Acknowledged</th></tr></thead>
            <tbody>
              {findings.map((f, i) => (
                <tr key={f.id ?? i} class={`finding finding-${f.severity}`} data-finding={f.id}>
                  <td><span class={`badge badge-${f.severity === 'error' && !f.acknowledged ? 'bad' : f.severity === 'warning' ? 'warn' : 'neutral'}`}>{f.severity}</span></td>
                  <td><RuleLink rule={f.rule} docUrl={f.docUrl} /></td>
                  <td class="mono small">{f.migration ?? '—'}</td>
                  <td>{f.message}{f.statement ? <pre class="code small">{f.statement}</pre> : null}</td>
                  <td>
                    {f.acknowledged ? `yes: ${f.acknowledged.reason}${f.acknowledged.by ? ` (${f.acknowledged.by})` : ' (in the file)'}` : 'no'}
                    <AcknowledgeForm run={run} finding={f} onDone={onChange} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      <p class="hint">An approver other than the requester acknowledges a finding here, for this digest; a <code>lint-ack</code> comment in the migration file covers the statement after it (<a href={href('/rules')}>rules</a>).</p>
      <h3>Checks</h3>
      <TableWrap label="Preflight checks">
        <table>
          <thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Detail</th></tr></thead>
          <tbody>
            {report.checks.map((c) => (
              <tr key={c.id}><td class="mono">{c.id}</td><td><span class={`badge badge-${c.status === 'pass' ? 'good' : c.status === 'warn' ? 'warn' : c.status === 'skip' ? 'neutral' : 'bad'}`}>{c.status}</span></td><td>{c.detail}</td></tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {impact ? (
        <>
          <h3>Impact</h3>
          <p>Estimated total: <strong>{duration(impact.totalEstimatedMs)}</strong> <span class="muted">({impact.assumptions})</span></p>
          <TableWrap label="Tables touched">
            <table>
              <caption>Tables touched</caption>
              <thead><tr><th scope="col">Table</th><th scope="col">Exists</th><th scope="col">Rows</th><th scope="col">Size</th></tr></thead>
              <tbody>
                {impact.tables.map((t) => <tr key={t.table}><td class="mono">{t.table}</td><td>{t.exists ? 'yes' : 'new'}</td><td>{count(t.rows)}</td><td>{bytes(t.bytes)}</td></tr>)}
              </tbody>
            </table>
          </TableWrap>
          <TableWrap label="Per migration">
            <table>
              <caption>Per migration</caption>
              <thead><tr><th scope="col">Migration</th><th scope="col">Strongest lock</th><th scope="col">Rehearsal</th><th scope="col">Estimate</th><th scope="col">Transaction</th></tr></thead>
              <tbody>
                {impact.migrations.map((m) => (
                  <tr key={m.migration}><td class="mono small">{m.migration}</td><td>{m.strongestLock}</td><td>{duration(m.rehearsalMs)}</td><td>{duration(m.estimatedMs)}</td><td>{m.transactional ? 'yes' : 'no'}</td></tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </>
      ) : null}
      {report.notes.length ? <><h3>Notes</h3><ul>{report.notes.map((n, i) => <li key={i}>{n}</li>)}</ul></> : null}
    </Section>
  );
}

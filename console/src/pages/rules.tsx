import { useEffect } from 'preact/hooks';
import { Section } from '../components/ui.js';
import { RULES, squawkUrl } from '../lib/rules.js';

export function RulesPage({ focus }: { focus?: string }) {
  useEffect(() => {
    if (focus) document.getElementById(`rule-${focus}`)?.scrollIntoView();
  }, [focus]);
  return (
    <>
      <h1>Preflight rules</h1>
      <Section title="What each finding means" id="rules">
        <dl class="rules">
          {RULES.map((r) => (
            <div key={r.rule} id={`rule-${r.rule}`} class={focus === r.rule ? 'focused' : undefined}>
              <dt class="mono">{r.rule}</dt>
              <dd>{r.summary}{r.squawk ? <> <a href={squawkUrl(r.rule)} rel="noreferrer noopener" target="_blank">More on squawk's page</a></> : null}</dd>
            </div>
          ))}
        </dl>
        {focus && !RULES.some((r) => r.rule === focus) ? <p class="muted">No description for rule <span class="mono">{focus}</span> yet.</p> : null}
      </Section>
    </>
  );
}

/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, Node 22
 * from the npm package `node`) run as the agent inside `gatehouse run`: the
 * sandboxed path, no token. The gateway fronts our conformance fixture, exposed
 * without a prefix, with sampling and elicitation allowed; once over Streamable
 * HTTP (server-to-client messages found through the call's stream) and once over
 * stdio (found as the only call in flight). The fixture does not check Host, so
 * dns-rebinding-protection passes only through the gateway's own check.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir, type HttpFixture } from '../helpers/gateway.js';
import { conformanceRun, NODE22, spawnConformanceFixture, stdioConformance, type Outcome } from './helpers.js';

/** The scenarios issue 9 requires, each of which must pass with no failure and no warning. */
export const REQUIRED = [
  'server-initialize',
  'ping',
  'logging-set-level',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-with-logging',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-sampling',
  'tools-call-elicitation',
  'json-schema-2020-12',
  'elicitation-sep1034-defaults',
  'elicitation-sep1330-enums',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
] as const;
/** Required but not in the CLI's active suite (0.1.x): run on their own. */
const OUTSIDE_ACTIVE_SUITE = ['json-schema-2020-12'];
const BASELINE = join(ROOT, 'test', 'conformance', 'not-brokered.yml');
const RUN_TIMEOUT_MS = 120_000;

const base = tempDir('gh-conformance-');
let fixture: HttpFixture;
const outcomes: Record<'http' | 'stdio', Outcome | undefined> = { http: undefined, stdio: undefined };

beforeAll(async () => {
  fixture = await spawnConformanceFixture();
  const connector = { prefix: '', sampling: 'allow', elicitation: 'allow' };
  // Both transports at once: separate state, separate sandboxes (each has its own port 8931).
  const [http, stdio] = await Promise.all([
    conformanceRun(join(base, 'http'), { name: 'conformance', kind: 'http', url: fixture.url, ...connector }, [BASELINE, ...OUTSIDE_ACTIVE_SUITE], RUN_TIMEOUT_MS),
    conformanceRun(join(base, 'stdio'), stdioConformance('conformance', connector), [BASELINE, ...OUTSIDE_ACTIVE_SUITE], RUN_TIMEOUT_MS),
  ]);
  outcomes.http = http;
  outcomes.stdio = stdio;
}, RUN_TIMEOUT_MS);

afterAll(async () => {
  await fixture?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('the conformance suite set-up', () => {
  it('has its Node 22 (installed by scripts/test-deps.sh, which the README test command runs)', () => {
    expect(existsSync(NODE22), `${NODE22} is missing: run sh scripts/test-deps.sh`).toBe(true);
  });
});

describe.each(['http', 'stdio'] as const)('the conformance suite through gatehouse run, upstream over %s', (transport) => {
  const outcome = () => {
    const o = outcomes[transport];
    if (!o?.report) throw new Error(`no report from the sandboxed agent (exit ${o?.code}):\n${o?.stdout}\n${o?.stderr}`);
    return { ...o, report: o.report };
  };

  it('the list of required scenarios is not empty, and the sandboxed agent reported on each', () => {
    expect(REQUIRED.length).toBeGreaterThan(10);
    const { report, code } = outcome();
    expect(code).toBe(0);
    expect(Object.keys(report.scenarios)).toEqual(expect.arrayContaining([...REQUIRED]));
  });

  it.each(REQUIRED)('%s passes with no failed or warning check', (scenario) => {
    const checks = outcome().report.scenarios[scenario] ?? [];
    expect(checks.some((c) => c.status === 'SUCCESS')).toBe(true);
    expect(checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')).toEqual([]);
  });

  it('every CLI run exits 0 (the suite with the not-brokered baseline, and each scenario outside it)', () => {
    for (const r of outcome().report.runs) expect({ name: r.name, code: r.code, tail: r.code === 0 ? '' : r.tail }).toEqual({ name: r.name, code: 0, tail: '' });
  });

  it('sampling and elicitation reached the sandboxed agent and are audited as allowed', () => {
    const { audit } = outcome();
    const via = transport === 'http' ? 'call-stream' : 'only-call';
    const sampling = audit.filter((r) => r.event === 'sampling.request');
    const elicitation = audit.filter((r) => r.event === 'elicitation.request');
    expect(sampling.length).toBeGreaterThan(0);
    expect(elicitation.length).toBeGreaterThanOrEqual(3);
    for (const r of [...sampling, ...elicitation]) expect(r).toMatchObject({ agent: 'conformance', connector: 'conformance', decision: 'allow', outcome: 'ok', via });
    expect(elicitation.map((r) => r.tool).sort()).toEqual(expect.arrayContaining(['test_elicitation', 'test_elicitation_sep1034_defaults', 'test_elicitation_sep1330_enums']));
  });

});

/**
 * The official conformance suite (0.2.x, Node 22) as the sandboxed agent
 * through the gateway, in both protocol eras, against upstreams of both eras
 * (issue #20): `--requirements 2025-11-25` and `--requirements 2026-07-28`,
 * each scenario run at its revision's wire, over Streamable HTTP and stdio
 * upstreams built on the SDK v1 (a 2025-11-25 server) and the SDK v2 (a
 * 2026-07-28 server). conformance.int.test.ts keeps the 2025 agent against
 * the v1 upstreams with the suite's active set.
 *
 * Every scenario the suite runs either passes with no failed or warning check
 * (but the SHOULD-level checks listed in ALLOWED_CHECKS, each with its
 * reason), or is listed below with the reason it cannot pass through this
 * gateway: a new failure, or a not-brokered one that starts passing, fails the test.
 */
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type ConnectorSpec, type HttpFixture } from '../helpers/gateway.js';
import { conformanceRun, spawnConformanceFixture, spawnConformanceFixtureV2, stdioConformance, stdioConformanceV2, type Outcome } from './helpers.js';

const RUN_TIMEOUT_MS = 150_000;

type Era = '2025-11-25' | '2026-07-28';
type Upstream = 'v1' | 'v2';
type Transport = 'http' | 'stdio';

const TOOLS = [
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-error',
  'tools-call-with-progress',
  'json-schema-2020-12',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
];

/** What must pass, per agent era and upstream. */
function required(era: Era, upstream: Upstream): string[] {
  if (era === '2025-11-25') {
    return [
      ...TOOLS,
      'server-initialize',
      'server-session-lifecycle',
      'ping',
      'logging-set-level',
      'tools-call-with-logging',
      'tools-call-sampling',
      'tools-call-elicitation',
      'elicitation-sep1034-defaults',
      'elicitation-sep1330-enums',
    ];
  }
  const common = [...TOOLS];
  if (upstream === 'v1') return common;
  return [
    ...common,
    'server-stateless',
    'input-required-result-basic-elicitation',
    'input-required-result-basic-sampling',
    'input-required-result-request-state',
    'input-required-result-multi-round',
    'input-required-result-missing-input-response',
    'input-required-result-result-type',
    'input-required-result-unsupported-methods',
    'input-required-result-tampered-state',
    'input-required-result-capability-check',
    'input-required-result-ignore-extra-params',
    'input-required-result-validate-input',
    'http-custom-header-server-validation',
  ];
}

/** Scenarios that cannot pass through the gateway, and why. */
const NOT_BROKERED: Record<string, string> = {
  'completion-complete': 'the gateway brokers tools only (no completions)',
  'resources-list': 'tools only (no resources)',
  'resources-read-text': 'tools only',
  'resources-read-binary': 'tools only',
  'resources-templates-read': 'tools only',
  'resources-subscribe': 'tools only',
  'resources-unsubscribe': 'tools only',
  'prompts-list': 'tools only (no prompts)',
  'prompts-get-simple': 'tools only',
  'prompts-get-with-args': 'tools only',
  'prompts-get-embedded-resource': 'tools only',
  'prompts-get-with-image': 'tools only',
  caching: 'its prompts/resources list checks (tools/list and server/discover carry their hints)',
  'input-required-result-basic-list-roots': 'roots are not passed through the gateway (sampling and elicitation are)',
  'input-required-result-multiple-input-requests': 'one of its three input requests is roots/list',
  'input-required-result-non-tool-request': 'its input request comes from prompts/get',
};
/** Documented like NOT_BROKERED, but not asserted to fail (their checks vary with what else the suite ran). */
const MAY_FAIL: Record<string, string> = {
  'sep-2164-resource-not-found': 'resources/read is not brokered (its error is -32601, not the resource-not-found -32602)',
  'http-custom-header-server-validation': 'the v1 fixture declares no x-mcp-header tool parameter (pending in the 2026-07-28 set; required of the v2 runs)',
  'http-header-validation':
    'only its whitespace check, which calls the first tool listed (json_schema_2020_12_tool) with no arguments, which that schema refuses (pending in the 2026-07-28 set; the whitespace itself is accepted: test/server/era-2026.int.test.ts)',
  'server-sse-polling': 'resumable SSE (priming event, retry field) is not offered: a dropped stream cancels its calls (src/server/hang-up.ts); pending in the 2025-11-25 set',
};
/** Single checks, SHOULD-level, that may warn inside a scenario that must otherwise pass. */
const ALLOWED_CHECKS: Record<string, string> = {
  'sep-2575-server-sends-tools-list-changed-on-subscription':
    'a change reaches listen streams after the upstream’s list is read again, at most limits.relistsPerMinute times a minute: longer than the scenario’s 800 ms window right after start',
  'sep-2322-ignore-unexpected-params':
    'answers sent without the gateway’s requestState answer nothing the gateway asked: they are ignored (mrtr §Error Handling), so the upstream asks again',
};
const EXTENSION = /^tasks-/;
const failing = (checks: Array<{ id: string; status: string }>) => checks.filter((c) => (c.status === 'FAILURE' || c.status === 'WARNING') && ALLOWED_CHECKS[c.id] === undefined);

/** Per upstream fixture: what it lacks for a scenario (not the gateway's doing). */
function fixtureGap(era: Era, upstream: Upstream, scenario: string): string | undefined {
  if (era === '2026-07-28' && upstream === 'v1') {
    if (scenario === 'server-stateless') return 'its diagnostics need a 2026-07-28 upstream (an undeclared capability is the upstream’s -32021)';
    if (scenario.startsWith('input-required-result-')) return 'the 2025-11-25 fixture has no test_input_required_result_* tools (the bridge from its requests is tested in test/broker/mrtr-2026.int.test.ts)';
  }
  return undefined;
}

const RUNS: Array<{ era: Era; upstream: Upstream; transport: Transport }> = [
  { era: '2025-11-25', upstream: 'v2', transport: 'http' },
  { era: '2025-11-25', upstream: 'v2', transport: 'stdio' },
  { era: '2026-07-28', upstream: 'v1', transport: 'http' },
  { era: '2026-07-28', upstream: 'v1', transport: 'stdio' },
  { era: '2026-07-28', upstream: 'v2', transport: 'http' },
  { era: '2026-07-28', upstream: 'v2', transport: 'stdio' },
];
const key = (r: (typeof RUNS)[number]) => `${r.era} agent, ${r.upstream} upstream over ${r.transport}`;

const base = tempDir('gh-conformance-eras-');
const fixtures: Partial<Record<Upstream, HttpFixture>> = {};
const outcomes = new Map<string, Outcome>();

beforeAll(async () => {
  const [v1, v2] = await Promise.all([spawnConformanceFixture(), spawnConformanceFixtureV2()]);
  fixtures.v1 = v1;
  fixtures.v2 = v2;
  const allow = { prefix: '', sampling: 'allow', elicitation: 'allow' };
  const connector = (u: Upstream, t: Transport): ConnectorSpec =>
    t === 'http' ? { name: 'conformance', kind: 'http', url: (u === 'v1' ? v1 : v2).url, ...allow } : (u === 'v1' ? stdioConformance : stdioConformanceV2)('conformance', allow);
  await Promise.all(
    RUNS.map(async (r, i) => {
      outcomes.set(key(r), await conformanceRun(join(base, `run-${i}`), connector(r.upstream, r.transport), ['-', `--requirements=${r.era}`], RUN_TIMEOUT_MS));
    }),
  );
}, RUN_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([fixtures.v1?.close(), fixtures.v2?.close()]);
  rmSync(base, { recursive: true, force: true });
});

describe.each(RUNS)('the conformance suite through gatehouse run: $era agent, $upstream upstream over $transport', (run) => {
  const outcome = () => {
    const o = outcomes.get(key(run));
    if (!o?.report) throw new Error(`no report from the sandboxed agent (exit ${o?.code}):\n${o?.stdout}\n${o?.stderr}`);
    return { ...o, report: o.report };
  };
  const must = required(run.era, run.upstream);

  it('ran every required scenario (and the list is not empty)', () => {
    expect(must.length).toBeGreaterThan(10);
    expect(Object.keys(outcome().report.scenarios)).toEqual(expect.arrayContaining(must));
  });

  it.each(must)('%s passes with no failed or warning check', (scenario) => {
    const checks = outcome().report.scenarios[scenario] ?? [];
    expect(checks.some((c) => c.status === 'SUCCESS')).toBe(true);
    expect(failing(checks)).toEqual([]);
  });

  it('every other scenario that fails is one the gateway does not broker, an extension, or a gap of the fixture, each with its reason', () => {
    const unexplained: Record<string, unknown> = {};
    for (const [scenario, checks] of Object.entries(outcome().report.scenarios)) {
      const bad = failing(checks);
      if (bad.length === 0 || NOT_BROKERED[scenario] !== undefined || MAY_FAIL[scenario] !== undefined || EXTENSION.test(scenario) || fixtureGap(run.era, run.upstream, scenario) !== undefined) continue;
      unexplained[scenario] = bad;
    }
    expect(unexplained).toEqual({});
  });

  it('the not-brokered scenarios do fail (the list is not stale)', () => {
    const ran = outcome().report.scenarios;
    const passing = Object.keys(NOT_BROKERED).filter((s) => ran[s] !== undefined && !ran[s].some((c) => c.status === 'FAILURE' || c.status === 'WARNING'));
    expect(passing).toEqual([]);
  });

  it('every call is audited with the revision the agent spoke, tied to its sandbox (no token: the socket is the identity)', () => {
    const calls = outcome().audit.filter((a) => a.event === 'tools/call' && a.agent === 'conformance');
    expect(calls.length).toBeGreaterThan(10);
    for (const a of calls) {
      expect(a.protocol).toBe(run.era);
      if (run.era === '2026-07-28') {
        expect(typeof a.sandbox).toBe('string');
        expect(a).not.toHaveProperty('session');
      } else {
        expect(typeof a.session).toBe('string');
      }
    }
  });

  it('sampling and elicitation went through the broker, audited as allowed', () => {
    const recs = outcome().audit.filter((a) => a.event === 'sampling.request' || a.event === 'elicitation.request');
    const expected = run.upstream === 'v2' ? 'input-required' : run.transport === 'http' ? 'call-stream' : 'only-call';
    if (run.era === '2026-07-28' && run.upstream === 'v1') {
      // The 2025 fixture has no MRTR tools and the 2026 set calls none of its sampling/elicitation tools.
      expect(recs.filter((a) => a.outcome === 'ok')).toEqual([]);
      return;
    }
    expect(recs.filter((a) => a.outcome === 'ok').length).toBeGreaterThan(0);
    for (const a of recs.filter((x) => x.outcome === 'ok')) expect(a).toMatchObject({ agent: 'conformance', connector: 'conformance', decision: 'allow', via: expected });
  });
});

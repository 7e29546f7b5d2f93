/**
 * Every non-2xx status a provider's description documents for an operation
 * the built-in connectors call maps to an error that says what happened and
 * what to do, never to "unexpected status" (issue #22). The operations are
 * the ones the connectors really send: every tool and the probe are driven
 * against the simulators and each request is matched in the description.
 * The statuses are each operation's own responses plus the provider-wide ones
 * the contract tests use (GitHub 401/403/429, Jira 429).
 *
 * Not here: Slack answers HTTP 200 with ok:false (its codes are held by
 * errors.test.ts); Jira Data Center REST v2 and /rest/api/2/serverInfo have no
 * description we could obtain (contract/specs/README.md).
 */
import { STATUS_CODES } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFailure, type ErrorContext, type ProviderName } from '../../src/connectors/errors.js';
import { GITHUB_TOOLS } from '../../src/connectors/github/tools.js';
import { JIRA_TOOLS } from '../../src/connectors/jira/tools.js';
import { githubDescriptions, jiraCloudDescription } from './contract/descriptions.js';
import { drive, type Driven } from './contract/drive.js';
import { Description, type Operation } from './contract/openapi.js';
import type { Recorded, Sim } from './sim/base.js';
import { BIG_FILE, GITHUB_APP_TOKEN, GITHUB_TOKEN, startGithubSim } from './sim/github.js';
import { JIRA_API_TOKEN, JIRA_EMAIL, startJiraSim } from './sim/jira.js';

/**
 * Statuses for which a protocol fault is the honest answer, explained: 304
 * answers only a conditional request, and the connectors send none.
 */
const PROTOCOL_BY_DESIGN = new Set([304]);

interface Pair {
  /** "api.github.com pulls/get (GET /repos/{owner}/{repo}/pulls/{pull_number}) 406 "Unacceptable"" */
  where: string;
  status: number;
}

/** The operations `requests` reached in `d`, and a line for each request `d` has no operation for. */
function operationsCalled(d: Description, requests: readonly Recorded[]): { ops: Operation[]; unmatched: string[] } {
  const ops = new Set<Operation>();
  const unmatched: string[] = [];
  for (const r of requests) {
    const found = d.match(r.method, r.path);
    if (found) ops.add(found.op);
    else unmatched.push(`${d.name}: no operation for ${r.method} ${r.path}`);
  }
  return { ops: [...ops], unmatched };
}

/** Each (operation, non-2xx status) `d` documents for `ops`; a response key that is not one status (a range, "default") is a problem to look at. */
function documentedFailures(d: Description, ops: readonly Operation[]): { pairs: Pair[]; problems: string[] } {
  const pairs: Pair[] = [];
  const problems: string[] = [];
  for (const op of ops) {
    const name = `${d.name} ${op.id} (${op.method} ${op.template})`;
    for (const key of d.documentedStatuses(op)) {
      if (!/^\d{3}$/.test(key)) {
        problems.push(`${name} documents "${key}", not one status: list what it stands for in this test`);
        continue;
      }
      const status = Number(key);
      if (status >= 200 && status < 300) continue;
      const text = op.responses[key]?.description;
      pairs.push({ where: `${name} ${key} ${typeof text === 'string' ? JSON.stringify(text.split('\n')[0]) : '(documented for every operation)'}`, status });
    }
  }
  return { pairs, problems };
}

/** The error body each provider documents, carrying the status's reason phrase. */
function errorBody(provider: ProviderName, status: number): unknown {
  const reason = STATUS_CODES[status] ?? '';
  if (status === 304) return '';
  return provider === 'GitHub' ? { message: reason, documentation_url: 'https://docs.github.com/rest', status: String(status) } : { errorMessages: [reason], errors: {} };
}

/** A line for each pair whose error is not specific and actionable: empty when all are. */
function unactionable(pairs: readonly Pair[], ctx: ErrorContext): string[] {
  return pairs.flatMap(({ where, status }) => {
    const e = httpFailure({ status, headers: {}, body: errorBody(ctx.provider, status) }, ctx);
    const wrong = [
      /unexpected status/i.test(e.message) ? 'falls through to "unexpected status"' : '',
      e.kind === 'protocol' && !PROTOCOL_BY_DESIGN.has(status) ? 'is kind protocol' : '',
      e.status !== status ? `carries status ${String(e.status)}` : '',
      // What happened, then what to do: at least a second sentence.
      /\.\s+\S/.test(e.message) ? '' : 'says nothing to do',
    ].filter((w) => w !== '');
    return wrong.length === 0 ? [] : [`${where}: ${wrong.join(', ')}: [${e.kind}] ${e.message}`];
  });
}

interface Provider {
  /** Every (operation, status) pair checked. */
  pairs: Pair[];
  problems: string[];
  toolsCalled: Set<string>;
}

/** Drives the probe of each connector (one per kind of credential) and every tool in `tour`, then reads which operations each description has for what was sent. */
async function survey(sim: Sim, connectors: readonly [Driven, ...Driven[]], tour: Array<[string, Record<string, unknown>]>, descriptions: readonly Description[]): Promise<Provider> {
  const problems: string[] = [];
  const toolsCalled = new Set<string>();
  const [connector] = connectors;
  sim.reset();
  for (const c of connectors) await c.probe();
  for (const [tool, args] of tour) {
    const before = sim.requests.length;
    await connector.call(tool, args);
    if (sim.requests.length === before) problems.push(`${tool} ${JSON.stringify(args)} sent nothing: fix its arguments in the tour`);
    toolsCalled.add(tool);
  }
  const pairs: Pair[] = [];
  for (const d of descriptions) {
    const { ops, unmatched } = operationsCalled(d, sim.requests);
    const found = documentedFailures(d, ops);
    problems.push(...unmatched, ...found.problems);
    pairs.push(...found.pairs);
  }
  return { pairs, problems, toolsCalled };
}

const NOW = Date.parse('2025-06-01T12:00:00Z');

describe('GitHub: every status the descriptions document for an operation the connector calls gets a specific, actionable error', () => {
  const ctx: ErrorContext = { provider: 'GitHub', connector: 'github', secrets: ['github-token'], now: NOW };
  const repo = { owner: 'octo', repo: 'app' };
  const tour: Array<[string, Record<string, unknown>]> = [
    ['search_issues', { query: 'is:issue', maxItems: 5 }],
    ['get_issue', { ...repo, issue_number: 7 }],
    ['list_issues', { ...repo, maxItems: 5 }],
    ['create_issue', { ...repo, title: 'From the agent' }],
    ['comment_on_issue', { ...repo, issue_number: 3, body: 'looks good' }],
    ['list_pull_requests', { ...repo, maxItems: 5 }],
    ['get_pull_request', { ...repo, pull_number: 202 }],
    ['get_file_contents', { ...repo, path: 'src/index.ts' }],
    ['get_file_contents', { ...repo, path: BIG_FILE }],
    ['search_code', { query: 'answer repo:octo/app', maxItems: 3 }],
  ];
  let sim: Sim;
  let gh: Driven;
  let app: Driven;
  let found: Provider;
  beforeAll(async () => {
    sim = await startGithubSim();
    const connect = (token: string) => drive({ name: 'github', kind: 'github', baseUrl: sim.url, token: '${secret:github-token}' }, { 'github-token': token });
    gh = await connect(GITHUB_TOKEN);
    app = await connect(GITHUB_APP_TOKEN);
    found = await survey(sim, [gh, app], tour, githubDescriptions());
  });
  afterAll(async () => {
    await gh?.close();
    await app?.close();
    await sim?.close();
  });

  it('the tour calls every tool and probes with a personal and an app installation token, and api.github.com, GHES 3.17 and 3.19 describe every request it sends', () => {
    expect(GITHUB_TOOLS.length).toBeGreaterThan(0);
    expect([...found.toolsCalled].sort()).toEqual(GITHUB_TOOLS.map((t) => t.name).sort());
    expect(found.problems).toEqual([]);
    expect(found.pairs.length).toBeGreaterThan(50);
  });

  it('no documented status falls through to "unexpected status" (e.g. 406 on pulls/get, 304 on any GET, 500/503)', () => {
    expect(unactionable(found.pairs, ctx)).toEqual([]);
  });
});

describe('Jira Cloud: every status the description documents for an operation the connector calls gets a specific, actionable error', () => {
  const ctx: ErrorContext = { provider: 'Jira', connector: 'jira', secrets: ['jira-api-token'], now: NOW };
  const tour: Array<[string, Record<string, unknown>]> = [
    ['search', { jql: 'project = OPS', maxItems: 5 }],
    ['get_issue', { issueKey: 'OPS-3' }],
    ['create_issue', { projectKey: 'OPS', summary: 'From the agent' }],
    ['add_comment', { issueKey: 'OPS-3', body: 'Looks good' }],
    ['list_transitions', { issueKey: 'OPS-3' }],
    ['transition_issue', { issueKey: 'OPS-3', transitionId: '21' }],
  ];
  let sim: Sim;
  let jira: Driven;
  let found: Provider;
  beforeAll(async () => {
    sim = await startJiraSim('cloud');
    // deployment: cloud, so that every request is a described REST v3 one.
    jira = await drive({ name: 'jira', kind: 'jira', baseUrl: sim.url, deployment: 'cloud', auth: { email: JIRA_EMAIL, apiToken: '${secret:jira-api-token}' } }, { 'jira-api-token': JIRA_API_TOKEN });
    found = await survey(sim, [jira], tour, [jiraCloudDescription()]);
  });
  afterAll(async () => {
    await jira?.close();
    await sim?.close();
  });

  it('the tour calls every tool, and the Jira Cloud REST v3 description has every request it sends', () => {
    expect(JIRA_TOOLS.length).toBeGreaterThan(0);
    expect([...found.toolsCalled].sort()).toEqual(JIRA_TOOLS.map((t) => t.name).sort());
    expect(found.problems).toEqual([]);
    expect(found.pairs.length).toBeGreaterThan(10);
  });

  it('no documented status falls through to "unexpected status" (e.g. 409 and 413 on doTransition, 422 on createIssue)', () => {
    expect(unactionable(found.pairs, ctx)).toEqual([]);
  });
});

describe('the documented-status check catches what it is meant to', () => {
  const ctx: ErrorContext = { provider: 'GitHub', connector: 'github', secrets: ['github-token'], now: NOW };
  const d = new Description(
    {
      openapi: '3.0.3',
      paths: { '/teapot': { get: { operationId: 'brew/get', responses: { '200': { description: 'OK' }, '418': { description: "I'm a teapot" }, '5XX': { description: 'Server error' } } } } },
      components: { schemas: {} },
    },
    { name: 'tiny', shared: { '401': '' } },
  );
  const { ops } = operationsCalled(d, [{ method: 'GET', path: '/teapot', query: '', authorization: undefined, contentType: undefined, body: '' }]);
  const { pairs, problems } = documentedFailures(d, ops);

  it('a documented status that falls through to "unexpected status" is named with its operation and status', () => {
    expect(pairs.map((p) => p.status)).toEqual([418, 401]);
    expect(unactionable(pairs, ctx)).toEqual([expect.stringMatching(/^tiny brew\/get \(GET \/teapot\) 418 "I'm a teapot": falls through to "unexpected status", is kind protocol, says nothing to do: \[protocol\] /)]);
  });

  it('a status range, and a request the description has no operation for, are reported, not skipped', () => {
    expect(problems).toEqual(['tiny brew/get (GET /teapot) documents "5XX", not one status: list what it stands for in this test']);
    expect(operationsCalled(d, [{ method: 'GET', path: '/coffee', query: '', authorization: undefined, contentType: undefined, body: '' }]).unmatched).toEqual(['tiny: no operation for GET /coffee']);
  });
});

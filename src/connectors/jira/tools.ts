import { z } from 'zod';
import { ProviderApi, basic } from '../api.js';
import { RestClient } from '../http.js';
import { segment } from '../paths.js';
import type { BuiltinRuntime } from '../builtin-runtime.js';
import { USER_AGENT } from '../builtin-runtime.js';
import { ADD, CHANGE, READ, defineTool, maxItems, type ToolSpec } from '../tool.js';
import type { JiraConnectorConfig } from '../../registry/builtin-kinds.js';
import { secretRefs } from '../../secrets/template.js';
import { adf, adfText } from './adf.js';
import { deploymentResolver, type JiraDeployment, type KnownDeployment } from './deployment.js';


export interface JiraApi {
  base: ProviderApi;
  /** Cloud: REST v3 (ADF rich text, nextPageToken search); Data Center: REST v2 (plain text, startAt). Decided by the site, once; waited for until `signal` aborts. */
  deployment: (signal?: AbortSignal) => Promise<KnownDeployment>;
  browseUrl: string;
}

// Cloud: https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/
// Data Center: https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html
export function jiraApi(c: JiraConnectorConfig, rt: BuiltinRuntime): JiraApi {
  const client = new RestClient({ baseUrl: c.baseUrl, connectTimeoutMs: rt.connectTimeoutMs, requestTimeoutMs: rt.callTimeoutMs });
  const auth = c.auth;
  const templates = 'pat' in auth ? [auth.pat] : [auth.email, auth.apiToken];
  const base = new ProviderApi({
    provider: 'Jira',
    connector: c.name,
    secrets: [...new Set(templates.flatMap(secretRefs))],
    client,
    headers: { accept: 'application/json', 'user-agent': USER_AGENT },
    credential: async () => {
      if ('pat' in auth) {
        const pat = await rt.render(auth.pat, { connector: c.name, where: 'auth.pat' });
        return { headers: { authorization: `Bearer ${pat}` }, scrub: [pat] };
      }
      const email = await rt.render(auth.email, { connector: c.name, where: 'auth.email' });
      const token = await rt.render(auth.apiToken, { connector: c.name, where: 'auth.apiToken' });
      const b64 = basic(email, token);
      return { headers: { authorization: `Basic ${b64}` }, scrub: [token, b64] };
    },
  });
  return { base, deployment: deploymentResolver(base, c.deployment, c.baseUrl, rt.callTimeoutMs), browseUrl: `${c.baseUrl.replace(/\/+$/, '')}/browse/` };
}

const v = (d: JiraDeployment) => (d === 'cloud' ? '/rest/api/3' : '/rest/api/2');

type J = Record<string, unknown>;
const str = (x: unknown): string => (typeof x === 'string' ? x : '');
const obj = (x: unknown): J => (x && typeof x === 'object' && !Array.isArray(x) ? (x as J) : {});
const asList = (x: unknown): J[] => (Array.isArray(x) ? (x.filter((i) => i && typeof i === 'object') as J[]) : []);
const nameOf = (x: unknown): string | null => {
  const o = obj(x);
  const n = str(o.displayName) || str(o.name);
  return n === '' ? null : n;
};

/** Cloud v3 rich-text fields take ADF; Data Center v2 takes the plain string. */
const richText = (d: JiraDeployment, text: string): unknown => (d === 'cloud' ? adf(text) : text);

const IssueKey = z.string().regex(/^(?:[A-Z][A-Z0-9_]{0,49}-[1-9][0-9]{0,9}|[1-9][0-9]{0,17})$/).describe('Issue key like PROJ-123 (or numeric id)');
const issuePath = (d: JiraDeployment, key: string) => `${v(d)}/issue/${segment('issueKey', key, 'jiraIssue')}`;

const Summary = z.object({ key: z.string(), id: z.string(), summary: z.string(), status: z.string().nullable(), type: z.string().nullable(), priority: z.string().nullable(), assignee: z.string().nullable(), updated: z.string().nullable(), url: z.string() });
const summaryOf = (api: JiraApi, i: J) => {
  const f = obj(i.fields);
  return {
    key: str(i.key),
    id: str(i.id),
    summary: str(f.summary),
    status: nameOf(f.status),
    type: nameOf(f.issuetype),
    priority: nameOf(f.priority),
    assignee: nameOf(f.assignee),
    updated: typeof f.updated === 'string' ? f.updated : null,
    url: `${api.browseUrl}${str(i.key)}`,
  };
};

const SEARCH_FIELDS = ['summary', 'status', 'issuetype', 'priority', 'assignee', 'updated'];
const PAGE = 100;

export const search = defineTool({
  name: 'search',
  title: 'Search Jira issues with JQL',
  description: 'Finds issues with a JQL query, e.g. "project = OPS AND status != Done ORDER BY updated DESC".',
  input: z.strictObject({ jql: z.string().min(1).max(5000), maxItems: maxItems(50, 500) }),
  output: z.object({ issues: z.array(Summary), total: z.number().nullable(), truncated: z.boolean() }),
  annotations: READ,
  async run(api: JiraApi, a, call) {
    const cloud = (await api.deployment(call.signal)).deployment === 'cloud';
    const issues: J[] = [];
    let total: number | null = null;
    let more = false;
    // Cloud: POST /rest/api/3/search/jql pages with nextPageToken (the old /search is retired);
    // Data Center: POST /rest/api/2/search pages with startAt/maxResults.
    let token: string | undefined;
    for (let page = 0; page < Math.ceil(a.maxItems / PAGE) + 1; page++) {
      const maxResults = Math.min(PAGE, a.maxItems - issues.length);
      const body = cloud
        ? { jql: a.jql, fields: SEARCH_FIELDS, maxResults, ...(token !== undefined ? { nextPageToken: token } : {}) }
        : { jql: a.jql, fields: SEARCH_FIELDS, maxResults, startAt: issues.length };
      const res = await api.base.request({ method: 'POST', path: cloud ? '/rest/api/3/search/jql' : '/rest/api/2/search', json: body, bucket: 'jira', signal: call.signal });
      const b = obj(res.body);
      const got = asList(b.issues);
      issues.push(...got);
      if (cloud) {
        token = typeof b.nextPageToken === 'string' && b.nextPageToken !== '' ? b.nextPageToken : undefined;
        more = token !== undefined && b.isLast !== true;
      } else {
        total = typeof b.total === 'number' ? b.total : null;
        more = total !== null ? issues.length < total : got.length === maxResults;
      }
      if (!more || got.length === 0 || issues.length >= a.maxItems) break;
    }
    return { issues: issues.slice(0, a.maxItems).map((i) => summaryOf(api, i)), total, truncated: more };
  },
});

export const getIssue = defineTool({
  name: 'get_issue',
  title: 'Get a Jira issue',
  description: 'Gets one issue with its description, labels and latest comments.',
  input: z.strictObject({ issueKey: IssueKey }),
  output: Summary.extend({
    description: z.string(),
    labels: z.array(z.string()),
    reporter: z.string().nullable(),
    created: z.string().nullable(),
    comments: z.array(z.object({ id: z.string(), author: z.string().nullable(), created: z.string(), body: z.string() })),
  }),
  annotations: READ,
  async run(api: JiraApi, a, call) {
    const { deployment: d } = await api.deployment(call.signal);
    const res = await api.base.request({
      method: 'GET',
      path: issuePath(d, a.issueKey),
      query: { fields: [...SEARCH_FIELDS, 'description', 'labels', 'reporter', 'created', 'comment'].join(',') },
      bucket: 'jira',
      signal: call.signal,
    });
    const i = obj(res.body);
    const f = obj(i.fields);
    return {
      ...summaryOf(api, i),
      description: adfText(f.description).trim(),
      labels: Array.isArray(f.labels) ? f.labels.filter((l): l is string => typeof l === 'string') : [],
      reporter: nameOf(f.reporter),
      created: typeof f.created === 'string' ? f.created : null,
      comments: asList(obj(f.comment).comments)
        .slice(-20)
        .map((c) => ({ id: str(c.id), author: nameOf(c.author), created: str(c.created), body: adfText(c.body).trim() })),
    };
  },
});

export const createIssue = defineTool({
  name: 'create_issue',
  title: 'Create a Jira issue',
  description: 'Creates an issue in a project.',
  input: z.strictObject({
    projectKey: z.string().regex(/^[A-Z][A-Z0-9_]{0,49}$/).describe('Project key like OPS'),
    summary: z.string().min(1).max(255),
    issueType: z.string().min(1).max(60).default('Task').describe('Issue type name: Task, Bug, Story...'),
    description: z.string().max(32_000).optional(),
    labels: z.array(z.string().regex(/^\S{1,255}$/, 'labels have no spaces')).max(20).optional(),
  }),
  output: z.object({ key: z.string(), id: z.string(), url: z.string() }),
  annotations: ADD,
  async run(api: JiraApi, a, call) {
    segment('projectKey', a.projectKey, 'jiraProject');
    const { deployment: d } = await api.deployment(call.signal);
    const fields: J = { project: { key: a.projectKey }, summary: a.summary, issuetype: { name: a.issueType } };
    if (a.description !== undefined) fields.description = richText(d, a.description);
    if (a.labels) fields.labels = a.labels;
    const res = await api.base.request({ method: 'POST', path: `${v(d)}/issue`, json: { fields }, bucket: 'jira', signal: call.signal });
    const b = obj(res.body);
    return { key: str(b.key), id: str(b.id), url: `${api.browseUrl}${str(b.key)}` };
  },
});

export const addComment = defineTool({
  name: 'add_comment',
  title: 'Comment on a Jira issue',
  description: 'Adds a comment to an issue.',
  input: z.strictObject({ issueKey: IssueKey, body: z.string().min(1).max(32_000) }),
  output: z.object({ id: z.string(), issueKey: z.string(), created: z.string() }),
  annotations: ADD,
  async run(api: JiraApi, a, call) {
    const { deployment: d } = await api.deployment(call.signal);
    const res = await api.base.request({ method: 'POST', path: `${issuePath(d, a.issueKey)}/comment`, json: { body: richText(d, a.body) }, bucket: 'jira', signal: call.signal });
    const b = obj(res.body);
    return { id: str(b.id), issueKey: a.issueKey, created: str(b.created) };
  },
});

export const listTransitions = defineTool({
  name: 'list_transitions',
  title: 'List a Jira issue\'s transitions',
  description: 'Lists the workflow transitions available for an issue now (ids for transition_issue).',
  input: z.strictObject({ issueKey: IssueKey }),
  output: z.object({ transitions: z.array(z.object({ id: z.string(), name: z.string(), to: z.string().nullable() })) }),
  annotations: READ,
  async run(api: JiraApi, a, call) {
    const { deployment: d } = await api.deployment(call.signal);
    const res = await api.base.request({ method: 'GET', path: `${issuePath(d, a.issueKey)}/transitions`, bucket: 'jira', signal: call.signal });
    return { transitions: asList(obj(res.body).transitions).map((t) => ({ id: str(t.id), name: str(t.name), to: nameOf(t.to) })) };
  },
});

export const transitionIssue = defineTool({
  name: 'transition_issue',
  title: 'Move a Jira issue through its workflow',
  description: 'Performs a transition (e.g. to In Progress or Done) by id from list_transitions; optionally adds a comment.',
  input: z.strictObject({ issueKey: IssueKey, transitionId: z.string().regex(/^[1-9][0-9]{0,9}$/), comment: z.string().min(1).max(32_000).optional() }),
  output: z.object({ issueKey: z.string(), transitionId: z.string(), done: z.boolean() }),
  annotations: CHANGE,
  async run(api: JiraApi, a, call) {
    segment('transitionId', a.transitionId, 'jiraTransition');
    const { deployment: d } = await api.deployment(call.signal);
    const json: J = { transition: { id: a.transitionId } };
    if (a.comment !== undefined) json.update = { comment: [{ add: { body: richText(d, a.comment) } }] };
    await api.base.request({ method: 'POST', path: `${issuePath(d, a.issueKey)}/transitions`, json, bucket: 'jira', signal: call.signal });
    return { issueKey: a.issueKey, transitionId: a.transitionId, done: true };
  },
});

export const JIRA_TOOLS: readonly ToolSpec<JiraApi>[] = [search, getIssue, createIssue, addComment, listTransitions, transitionIssue];

const BY: Readonly<Record<KnownDeployment['by'], string>> = { registry: 'deployment in the registry', site: 'the site name', serverInfo: "the server's serverInfo" };

/** `connector test`: GET /rest/api/{3|2}/myself, after the deployment is known. */
export async function probeJira(api: JiraApi, signal: AbortSignal): Promise<string> {
  const known = await api.deployment(signal);
  const res = await api.base.request({ method: 'GET', path: `${v(known.deployment)}/myself`, bucket: 'jira', signal });
  const b = obj(res.body);
  const where = known.deployment === 'cloud' ? 'Cloud (REST v3)' : 'Data Center (REST v2)';
  return `authenticated as ${str(b.displayName) || str(b.name)} (${str(b.accountId) || str(b.name) || 'unknown id'}) on Jira ${where}, by ${BY[known.by]}`;
}

/**
 * Jira simulator, one deployment per site: Cloud (REST v3: ADF bodies,
 * /search/jql with nextPageToken; v2 without its removed /search) or Data
 * Center (REST v2 only: /search with startAt), each taking Basic
 * email:API token or a Bearer token, and telling which it is in
 * /rest/api/2/serverInfo, from the documented shapes
 * (https://developer.atlassian.com/cloud/jira/platform/rest/v3/).
 */
import type { Context } from 'hono';
import { json, startSim, type Sim } from './base.js';

export const JIRA_EMAIL = 'bot@acme.example';
export const JIRA_API_TOKEN = 'ATATT3xFfGF0SIMULATEDjiraTOKEN0123456789';
export const JIRA_PAT = 'NjQ2SIMULATEDjiraPAT0123456789abcdefXYZ';

const issues = Array.from({ length: 130 }, (_, i) => i + 1).map((n) => ({
  id: String(10000 + n),
  key: `OPS-${n}`,
  self: `https://acme.atlassian.net/rest/api/3/issue/${10000 + n}`,
  fields: {
    summary: `Ticket ${n}`,
    status: { name: n % 2 === 0 ? 'Done' : 'To Do' },
    issuetype: { name: 'Task' },
    priority: { name: 'Medium' },
    assignee: n % 3 === 0 ? null : { displayName: 'Ada', accountId: '5b10a' },
    reporter: { displayName: 'Grace' },
    updated: '2025-03-01T10:00:00.000+0000',
    created: '2025-02-01T10:00:00.000+0000',
    labels: ['ops'],
    description: { type: 'doc', version: 1, content: [{ type: 'paragraph', content: [{ type: 'text', text: `Description ${n}` }] }] },
    comment: { comments: [{ id: '1', author: { displayName: 'Ada' }, created: '2025-03-01T10:00:00.000+0000', body: { type: 'doc', version: 1, content: [{ type: 'paragraph', content: [{ type: 'text', text: 'first!' }] }] } }] },
  },
}));

const NOT_FOUND = { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} };

/** One site is one deployment: Cloud (v3 and v2, the old search removed) or Data Center (v2 only). */
export type JiraSimDeployment = 'cloud' | 'datacenter';

// https://developer.atlassian.com/changelog/#CHANGE-2046
const SEARCH_REMOVED = { errorMessages: ['The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046'], errors: {} };

export async function startJiraSim(deployment: JiraSimDeployment = 'cloud'): Promise<Sim> {
  return startSim('', (app) => {
    const cloudAuth = `Basic ${Buffer.from(`${JIRA_EMAIL}:${JIRA_API_TOKEN}`).toString('base64')}`;
    app.use('*', async (c, next) => {
      const h = c.req.header('authorization');
      // Either deployment takes either credential (Basic or Bearer); anything else: 401.
      if (h !== cloudAuth && h !== `Bearer ${JIRA_PAT}`) {
        return new Response('Client must be authenticated to access this resource.', { status: 401, headers: { 'content-type': 'text/html;charset=UTF-8', 'www-authenticate': 'OAuth realm="https%3A%2F%2Facme.atlassian.net"' } });
      }
      await next();
      return undefined;
    });
    // Data Center has no REST v3 (Jersey answers "null for uri"); Cloud removed GET/POST /rest/api/{2,3}/search (410).
    app.use('/rest/api/3/*', async (c, next) => {
      if (deployment === 'datacenter') return json(c, 404, { message: `null for uri: ${c.req.url}`, 'status-code': 404 });
      await next();
      return undefined;
    });
    app.use('/rest/api/:v/search', async (c, next) => {
      if (deployment === 'cloud') return json(c, 410, SEARCH_REMOVED);
      await next();
      return undefined;
    });
    app.get('/rest/api/2/serverInfo', (c) =>
      json(c, 200, { baseUrl: new URL(c.req.url).origin, version: deployment === 'cloud' ? '1001.0.0-SNAPSHOT' : '9.12.0', versionNumbers: deployment === 'cloud' ? [1001, 0, 0] : [9, 12, 0], deploymentType: deployment === 'cloud' ? 'Cloud' : 'Server', buildNumber: 100250, serverTitle: 'Jira' }),
    );
    const find = (c: Context) => issues.find((i) => i.key === c.req.param('key') || i.id === c.req.param('key'));
    const needJson = (c: Context) => ((c.req.header('content-type') ?? '').startsWith('application/json') ? undefined : json(c, 415, { errorMessages: ['Unsupported media type'], errors: {} }));
    const asV2 = (i: (typeof issues)[number]) => ({ ...i, fields: { ...i.fields, description: `Description ${i.key}`, comment: { comments: [{ id: '1', author: { displayName: 'Ada' }, created: '2025-03-01', body: 'first!' }] } } });

    app.get('/rest/api/:v/myself', (c) => json(c, 200, c.req.param('v') === '3' ? { accountId: '5b10ac8d82e05b22cc7d4ef5', displayName: 'Gatehouse Bot', emailAddress: JIRA_EMAIL } : { name: 'gatehouse', key: 'gatehouse', displayName: 'Gatehouse Bot' }));
    app.post('/rest/api/3/search/jql', async (c) => {
      const bad = needJson(c);
      if (bad) return bad;
      const b = (await c.req.json()) as { jql?: string; maxResults?: number; nextPageToken?: string };
      if (!b.jql || b.jql.includes('syntax error')) return json(c, 400, { errorMessages: ["Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'error'."], errors: {} });
      const start = b.nextPageToken ? Number(Buffer.from(b.nextPageToken, 'base64').toString()) : 0;
      const max = Math.min(100, b.maxResults ?? 50);
      const page = issues.slice(start, start + max);
      const more = start + max < issues.length;
      return json(c, 200, { issues: page, isLast: !more, ...(more ? { nextPageToken: Buffer.from(String(start + max)).toString('base64') } : {}) });
    });
    app.post('/rest/api/2/search', async (c) => {
      const b = (await c.req.json()) as { jql?: string; maxResults?: number; startAt?: number };
      const start = b.startAt ?? 0;
      const max = Math.min(100, b.maxResults ?? 50);
      return json(c, 200, { startAt: start, maxResults: max, total: issues.length, issues: issues.slice(start, start + max).map(asV2) });
    });
    app.get('/rest/api/:v/issue/:key', (c) => {
      const i = find(c);
      if (!i) return json(c, 404, NOT_FOUND);
      return json(c, 200, c.req.param('v') === '3' ? i : asV2(i));
    });
    app.post('/rest/api/:v/issue', async (c) => {
      const bad = needJson(c);
      if (bad) return bad;
      const b = (await c.req.json()) as { fields?: { summary?: string; project?: { key?: string }; description?: unknown } };
      const errors: Record<string, string> = {};
      if (!b.fields?.summary) errors.summary = 'You must specify a summary of the issue.';
      if (b.fields?.project?.key !== 'OPS') errors.project = 'valid project is required';
      if (c.req.param('v') === '3' && b.fields?.description !== undefined && typeof b.fields.description === 'string') errors.description = 'Operation value must be an Atlassian Document';
      if (Object.keys(errors).length > 0) return json(c, 400, { errorMessages: [], errors });
      return json(c, 201, { id: '10999', key: 'OPS-999', self: 'https://acme.atlassian.net/rest/api/3/issue/10999' });
    });
    app.post('/rest/api/:v/issue/:key/comment', async (c) => {
      if (!find(c)) return json(c, 404, NOT_FOUND);
      const b = (await c.req.json()) as { body?: unknown };
      if (c.req.param('v') === '3' && (typeof b.body !== 'object' || (b.body as { type?: string }).type !== 'doc')) return json(c, 400, { errorMessages: ['Comment body is not valid!'], errors: {} });
      return json(c, 201, { id: '20001', created: '2025-03-02T10:00:00.000+0000', body: b.body });
    });
    app.get('/rest/api/:v/issue/:key/transitions', (c) => {
      if (!find(c)) return json(c, 404, NOT_FOUND);
      return json(c, 200, { expand: 'transitions', transitions: [{ id: '11', name: 'To Do', to: { name: 'To Do' } }, { id: '21', name: 'In Progress', to: { name: 'In Progress' } }, { id: '31', name: 'Done', to: { name: 'Done' } }] });
    });
    app.post('/rest/api/:v/issue/:key/transitions', async (c) => {
      if (!find(c)) return json(c, 404, NOT_FOUND);
      const b = (await c.req.json()) as { transition?: { id?: string } };
      if (!['11', '21', '31'].includes(b.transition?.id ?? '')) return json(c, 400, { errorMessages: ['Transition id \'99\' is not valid for this issue.'], errors: {} });
      return new Response(null, { status: 204 });
    });
    app.all('/rest/api/:v/admin/*', (c) => json(c, 200, { admin: true }));
  });
}

import { z } from 'zod';
import { ProviderApi } from '../api.js';
import { header, ProviderError } from '../errors.js';
import { RestClient, type Query } from '../http.js';
import { filePath, GITHUB_LOGIN, GITHUB_LOGIN_MAX, numberSegment, segment } from '../paths.js';
import type { BuiltinRuntime } from '../builtin-runtime.js';
import { USER_AGENT } from '../builtin-runtime.js';
import { ADD, READ, defineTool, maxItems, type CallInfo, type ToolSpec } from '../tool.js';
import { githubTokenKind, type GithubTokenKind } from './token-kind.js';
import type { GithubConnectorConfig } from '../../registry/builtin-kinds.js';
import { secretRefs } from '../../secrets/template.js';

export interface GithubApi {
  base: ProviderApi;
  /** The stored token's kind (rendered afresh, classified by prefix, dropped). */
  tokenKind: () => Promise<GithubTokenKind>;
}

// https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api
export function githubApi(c: GithubConnectorConfig, rt: BuiltinRuntime): GithubApi {
  const client = new RestClient({ baseUrl: c.baseUrl, connectTimeoutMs: rt.connectTimeoutMs, requestTimeoutMs: rt.callTimeoutMs });
  const base = new ProviderApi({
    provider: 'GitHub',
    connector: c.name,
    secrets: secretRefs(c.token),
    client,
    headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28', 'user-agent': USER_AGENT },
    credential: async () => {
      const token = await rt.render(c.token, { connector: c.name, where: 'token' });
      return { headers: { authorization: `Bearer ${token}` }, scrub: [token] };
    },
  });
  return { base, tokenKind: async () => githubTokenKind(await rt.render(c.token, { connector: c.name, where: 'token' })) };
}

/** RFC 8288 Link header → rel → URL. */
export function parseLink(value: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const text = Array.isArray(value) ? value.join(',') : value ?? '';
  // `[^<>]`, not `[^>]`: each match attempt stops at the next '<', so a header of many '<' without '>' is linear, not quadratic.
  for (const m of text.matchAll(/<([^<>]*)>\s*;\s*rel="?([^",;]+)"?/g)) if (m[1] !== undefined && m[2] !== undefined) out[m[2]] = m[1];
  return out;
}

const PER_PAGE_MAX = 100;

/**
 * Follows GitHub's Link rel="next" up to `max` items. A next link that
 * points outside the configured origin and base path is not followed.
 */
async function collect(api: GithubApi, bucket: string, path: string, query: Query, max: number, pick: (body: unknown) => unknown[], call: CallInfo) {
  const items: unknown[] = [];
  let body: unknown;
  let target: string | undefined = api.base.client.target(path, { ...query, per_page: Math.min(PER_PAGE_MAX, max) });
  let more = false;
  for (let page = 0; target !== undefined && page < Math.ceil(max / PER_PAGE_MAX) + 1; page++) {
    const res = await api.base.request({ method: 'GET', path, bucket, signal: call.signal }, target);
    body = res.body;
    const got = pick(body);
    items.push(...got);
    const next = parseLink(res.headers.link).next;
    const rel = next !== undefined ? api.base.client.relativePath(next) : undefined;
    target = rel ? `${api.base.client.basePath}${rel.path}${rel.search}` : undefined;
    more = next !== undefined;
    if (items.length >= max || got.length === 0) break;
  }
  return { items: items.slice(0, max), truncated: items.length > max || more, last: body };
}

const Login = z.string().min(1).max(GITHUB_LOGIN_MAX).regex(GITHUB_LOGIN, 'a GitHub login: letters, digits and single hyphens, at most 39 (a managed user ends in _SHORTCODE)');
const Owner = Login.describe('Repository owner (user or organization login)');
const Repo = z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/).describe('Repository name');
const Num = (what: string) => z.number().int().min(1).max(2 ** 31 - 1).describe(what);

type J = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const login = (v: unknown): string | null => (v && typeof v === 'object' ? strOrNull((v as J).login) : null);
const names = (v: unknown, key: string): string[] => (Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : x && typeof x === 'object' ? str((x as J)[key]) : '')).filter((s) => s !== '') : []);
const asList = (v: unknown): J[] => (Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as J[]) : []);

const IssueSummary = z.object({
  number: z.number(),
  title: z.string(),
  state: z.string(),
  author: z.string().nullable(),
  labels: z.array(z.string()),
  comments: z.number(),
  isPullRequest: z.boolean(),
  repository: z.string().optional(),
  url: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const Issue = IssueSummary.extend({
  body: z.string().nullable(),
  assignees: z.array(z.string()),
  closedAt: z.string().nullable(),
});

function issueSummary(i: J) {
  const repoUrl = str(i.repository_url);
  const m = /\/repos\/([^/]+\/[^/]+)$/.exec(repoUrl);
  return {
    number: num(i.number),
    title: str(i.title),
    state: str(i.state),
    author: login(i.user),
    labels: names(i.labels, 'name'),
    comments: num(i.comments),
    isPullRequest: i.pull_request !== undefined && i.pull_request !== null,
    ...(m?.[1] !== undefined ? { repository: m[1] } : {}),
    url: str(i.html_url),
    createdAt: str(i.created_at),
    updatedAt: str(i.updated_at),
  };
}
const issueFull = (i: J) => ({ ...issueSummary(i), body: strOrNull(i.body), assignees: names(i.assignees, 'login'), closedAt: strOrNull(i.closed_at) });

const PullSummary = z.object({
  number: z.number(),
  title: z.string(),
  state: z.string(),
  draft: z.boolean(),
  author: z.string().nullable(),
  head: z.string(),
  base: z.string(),
  url: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const Pull = PullSummary.extend({
  body: z.string().nullable(),
  merged: z.boolean(),
  mergeable: z.boolean().nullable(),
  additions: z.number(),
  deletions: z.number(),
  changedFiles: z.number(),
});
const ref = (v: unknown): string => (v && typeof v === 'object' ? str((v as J).label) || str((v as J).ref) : '');
const pullSummary = (p: J) => ({
  number: num(p.number),
  title: str(p.title),
  state: str(p.state),
  draft: p.draft === true,
  author: login(p.user),
  head: ref(p.head),
  base: ref(p.base),
  url: str(p.html_url),
  createdAt: str(p.created_at),
  updatedAt: str(p.updated_at),
});

const repoPath = (a: { owner: string; repo: string }) => `/repos/${segment('owner', a.owner, 'githubOwner')}/${segment('repo', a.repo, 'githubRepo')}`;
const listOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), truncated: z.boolean() });

export const searchIssues = defineTool({
  name: 'search_issues',
  title: 'Search GitHub issues and pull requests',
  description: 'Searches issues and pull requests with GitHub search syntax, e.g. "repo:octo/app is:issue is:open label:bug".',
  input: z.strictObject({
    query: z.string().min(1).max(256).describe('GitHub search query (the q parameter)'),
    sort: z.enum(['comments', 'created', 'updated']).optional(),
    order: z.enum(['asc', 'desc']).default('desc'),
    maxItems: maxItems(30, 300),
  }),
  output: listOf(IssueSummary).extend({ totalCount: z.number() }),
  annotations: READ,
  async run(api: GithubApi, a, call) {
    const r = await collect(api, 'search', '/search/issues', { q: a.query, sort: a.sort, order: a.order }, a.maxItems, (b) => asList((b as J).items), call);
    return { items: (r.items as J[]).map(issueSummary), truncated: r.truncated, totalCount: num((r.last as J | undefined)?.total_count) };
  },
});

export const getIssue = defineTool({
  name: 'get_issue',
  title: 'Get a GitHub issue',
  description: 'Gets one issue (or pull request, as an issue) with its body.',
  input: z.strictObject({ owner: Owner, repo: Repo, issue_number: Num('Issue number') }),
  output: Issue,
  annotations: READ,
  async run(api: GithubApi, a, call) {
    const path = `${repoPath(a)}/issues/${numberSegment('issue_number', a.issue_number)}`;
    const res = await api.base.request({ method: 'GET', path, bucket: 'core', signal: call.signal });
    return issueFull(res.body as J);
  },
});

export const listIssues = defineTool({
  name: 'list_issues',
  title: 'List GitHub issues',
  description: 'Lists issues of a repository (GitHub includes pull requests here; see isPullRequest).',
  input: z.strictObject({
    owner: Owner,
    repo: Repo,
    state: z.enum(['open', 'closed', 'all']).default('open'),
    labels: z.string().max(200).optional().describe('Comma-separated label names'),
    since: z.iso.datetime().optional().describe('Only issues updated at or after this time (ISO 8601)'),
    maxItems: maxItems(30, 300),
  }),
  output: listOf(IssueSummary),
  annotations: READ,
  async run(api: GithubApi, a, call) {
    const r = await collect(api, 'core', `${repoPath(a)}/issues`, { state: a.state, labels: a.labels, since: a.since }, a.maxItems, asList, call);
    return { items: (r.items as J[]).map(issueSummary), truncated: r.truncated };
  },
});

export const createIssue = defineTool({
  name: 'create_issue',
  title: 'Create a GitHub issue',
  description: 'Opens a new issue in a repository.',
  input: z.strictObject({
    owner: Owner,
    repo: Repo,
    title: z.string().min(1).max(256),
    body: z.string().max(65_536).optional(),
    labels: z.array(z.string().min(1).max(100)).max(20).optional(),
    assignees: z.array(Login).max(10).optional(),
  }),
  output: z.object({ number: z.number(), url: z.string(), state: z.string() }),
  annotations: ADD,
  async run(api: GithubApi, a, call) {
    const res = await api.base.request({
      method: 'POST',
      path: `${repoPath(a)}/issues`,
      bucket: 'core',
      json: { title: a.title, ...(a.body !== undefined ? { body: a.body } : {}), ...(a.labels ? { labels: a.labels } : {}), ...(a.assignees ? { assignees: a.assignees } : {}) },
      signal: call.signal,
    });
    const b = res.body as J;
    return { number: num(b.number), url: str(b.html_url), state: str(b.state) };
  },
});

export const commentOnIssue = defineTool({
  name: 'comment_on_issue',
  title: 'Comment on a GitHub issue or pull request',
  description: 'Adds a comment to an issue or pull request.',
  input: z.strictObject({ owner: Owner, repo: Repo, issue_number: Num('Issue or pull request number'), body: z.string().min(1).max(65_536) }),
  output: z.object({ id: z.number(), url: z.string() }),
  annotations: ADD,
  async run(api: GithubApi, a, call) {
    const path = `${repoPath(a)}/issues/${numberSegment('issue_number', a.issue_number)}/comments`;
    const res = await api.base.request({ method: 'POST', path, bucket: 'core', json: { body: a.body }, signal: call.signal });
    const b = res.body as J;
    return { id: num(b.id), url: str(b.html_url) };
  },
});

export const listPullRequests = defineTool({
  name: 'list_pull_requests',
  title: 'List GitHub pull requests',
  description: 'Lists pull requests of a repository.',
  input: z.strictObject({
    owner: Owner,
    repo: Repo,
    state: z.enum(['open', 'closed', 'all']).default('open'),
    base: z.string().min(1).max(255).optional().describe('Base branch name'),
    head: z.string().min(1).max(300).optional().describe('user:branch'),
    maxItems: maxItems(30, 300),
  }),
  output: listOf(PullSummary),
  annotations: READ,
  async run(api: GithubApi, a, call) {
    const r = await collect(api, 'core', `${repoPath(a)}/pulls`, { state: a.state, base: a.base, head: a.head }, a.maxItems, asList, call);
    return { items: (r.items as J[]).map(pullSummary), truncated: r.truncated };
  },
});

export const getPullRequest = defineTool({
  name: 'get_pull_request',
  title: 'Get a GitHub pull request',
  description: 'Gets one pull request with its body, merge state and size.',
  input: z.strictObject({ owner: Owner, repo: Repo, pull_number: Num('Pull request number') }),
  output: Pull,
  annotations: READ,
  async run(api: GithubApi, a, call) {
    const res = await api.base.request({ method: 'GET', path: `${repoPath(a)}/pulls/${numberSegment('pull_number', a.pull_number)}`, bucket: 'core', signal: call.signal });
    const p = res.body as J;
    return {
      ...pullSummary(p),
      body: strOrNull(p.body),
      merged: p.merged === true,
      mergeable: typeof p.mergeable === 'boolean' ? p.mergeable : null,
      additions: num(p.additions),
      deletions: num(p.deletions),
      changedFiles: num(p.changed_files),
    };
  },
});

/** The most of one file's contents a result carries; the rest is cut, and the result says so. */
export const MAX_FILE_BYTES = 1_000_000;
// https://docs.github.com/en/rest/repos/contents#get-repository-content: files of 1–100 MB come only
// with the raw or object media type; raw gives the bytes themselves.
const RAW = 'application/vnd.github.raw+json';

const FileOut = z.object({
  type: z.string(),
  path: z.string(),
  sha: z.string().optional(),
  size: z.number().optional(),
  content: z.string().optional(),
  binary: z.boolean().optional(),
  truncated: z.boolean().optional(),
  /** Why content is partial or missing. */
  note: z.string().optional(),
  entries: z.array(z.object({ name: z.string(), path: z.string(), type: z.string(), size: z.number() })).optional(),
});
type FileMeta = { type: string; path: string; sha?: string; size?: number };

/** File bytes as a result: binary (no content), or UTF-8 text with `truncated` and a note when cut at MAX_FILE_BYTES. */
function fileBody(meta: FileMeta, bytes: Buffer, cut: boolean): z.input<typeof FileOut> {
  if (bytes.includes(0)) return { ...meta, binary: true };
  if (!cut) return { ...meta, content: bytes.toString('utf8') };
  // The note counts the file's bytes kept, not the decoded text's: a byte that is not UTF-8 decodes to U+FFFD, three bytes.
  const kept = utf8Boundary(bytes);
  const of = meta.size !== undefined && meta.size > 0 ? ` of ${meta.size}` : '';
  return { ...meta, content: bytes.subarray(0, kept).toString('utf8'), truncated: true, note: `truncated: content holds the first ${kept} bytes${of}` };
}

/** How many of `bytes` to keep so a cut does not fall inside a multi-byte UTF-8 sequence (RFC 3629 §3), which would decode to U+FFFD. */
function utf8Boundary(bytes: Uint8Array): number {
  const end = bytes.length;
  // A sequence is at most 4 bytes: look back past at most 3 continuation bytes (10xxxxxx) for its lead.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = bytes[i] as number;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + need > end ? i : end;
  }
  return end;
}

/** A file fetched as raw bytes (1–100 MB files), reading at most MAX_FILE_BYTES of it. */
async function rawFile(api: GithubApi, path: string, ref: string | undefined, meta: FileMeta, call: CallInfo): Promise<z.input<typeof FileOut>> {
  let res;
  try {
    res = await api.base.request({ method: 'GET', path, query: { ref }, bucket: 'core', accept: RAW, bytes: MAX_FILE_BYTES, signal: call.signal });
  } catch (e) {
    if (e instanceof ProviderError && e.kind === 'too_large' && e.status === 403) {
      throw new ProviderError('too_large', 'GitHub does not serve this file through its API: it is over 100 MB. Clone the repository to read it.', { status: e.status ?? 403 });
    }
    throw e;
  }
  const bytes = Buffer.isBuffer(res.body) ? res.body : Buffer.from(String(res.body));
  const length = Number(header(res.headers, 'content-length'));
  const size = meta.size ?? (Number.isSafeInteger(length) && length >= 0 ? length : undefined);
  return fileBody({ ...meta, ...(size !== undefined ? { size } : {}) }, bytes, res.truncated === true);
}

export const getFileContents = defineTool({
  name: 'get_file_contents',
  title: 'Get a file or directory from a GitHub repository',
  description: `Gets a text file's contents, or a directory listing, at a path and optional ref (branch, tag or commit). Files of up to 100 MB are read; content holds at most the first ${MAX_FILE_BYTES} bytes (truncated: true and a note say when it was cut).`,
  input: z.strictObject({
    owner: Owner,
    repo: Repo,
    path: z.string().max(1024).default('').describe('Path in the repository, e.g. "src/index.ts"; "" for the root'),
    ref: z.string().min(1).max(255).regex(/^[^\u0000-\u001f\u007f\s~^:?*[\\]+$/, 'a branch, tag or commit').optional(),
  }),
  output: FileOut,
  annotations: READ,
  async run(api: GithubApi, a, call) {
    const p = filePath('path', a.path);
    const path = `${repoPath(a)}/contents${p === '' ? '' : `/${p}`}`;
    let res;
    try {
      res = await api.base.request({ method: 'GET', path, query: { ref: a.ref }, bucket: 'core', signal: call.signal });
    } catch (e) {
      // The default media type refuses a file over 1 MB (403 too_large): ask for the raw bytes instead.
      // Only that 403: a 406 or 413 is another refusal and is reported as it is.
      if (e instanceof ProviderError && e.kind === 'too_large' && e.status === 403) return rawFile(api, path, a.ref, { type: 'file', path: a.path }, call);
      throw e;
    }
    if (Array.isArray(res.body)) {
      return { type: 'dir', path: a.path, entries: asList(res.body).map((e) => ({ name: str(e.name), path: str(e.path), type: str(e.type), size: num(e.size) })) };
    }
    const f = res.body as J;
    const meta = { type: str(f.type), path: str(f.path), sha: str(f.sha), size: num(f.size) };
    if (f.type !== 'file') return meta;
    if (f.encoding === 'base64' && typeof f.content === 'string') {
      const bytes = Buffer.from(f.content, 'base64');
      return fileBody(meta, bytes.subarray(0, MAX_FILE_BYTES), bytes.length > MAX_FILE_BYTES);
    }
    // A large file described without its content ("encoding": "none"): fetch the raw bytes.
    if (meta.size > 0) return rawFile(api, path, a.ref, meta, call);
    return { ...meta, content: '' };
  },
});

export const searchCode = defineTool({
  name: 'search_code',
  title: 'Search code on GitHub',
  description: 'Searches code with GitHub code search syntax, e.g. "addClass repo:jquery/jquery language:js".',
  input: z.strictObject({ query: z.string().min(1).max(256).describe('GitHub code search query (the q parameter)'), maxItems: maxItems(30, 100) }),
  output: z.object({
    items: z.array(z.object({ name: z.string(), path: z.string(), repository: z.string(), sha: z.string(), url: z.string() })),
    truncated: z.boolean(),
    totalCount: z.number(),
  }),
  annotations: READ,
  async run(api: GithubApi, a, call) {
    const r = await collect(api, 'code_search', '/search/code', { q: a.query }, a.maxItems, (b) => asList((b as J).items), call);
    return {
      items: (r.items as J[]).map((i) => ({ name: str(i.name), path: str(i.path), repository: i.repository && typeof i.repository === 'object' ? str((i.repository as J).full_name) : '', sha: str(i.sha), url: str(i.html_url) })),
      truncated: r.truncated,
      totalCount: num((r.last as J | undefined)?.total_count),
    };
  },
});

export const GITHUB_TOOLS: readonly ToolSpec<GithubApi>[] = [searchIssues, getIssue, listIssues, createIssue, commentOnIssue, listPullRequests, getPullRequest, getFileContents, searchCode];

/**
 * `gatehouse connector test` for GitHub: which kind of credential is stored
 * (from its prefix alone; the token is never shown, nor echoed back in a
 * header), and one request every supported kind may make; where that one
 * proves nothing, a second that the kind may make.
 */
import { header, ProviderError, sanitize } from '../errors.js';
import type { RestResponse } from '../http.js';
import type { GithubTokenKind } from './token-kind.js';
import type { GithubApi } from './tools.js';

const LABEL: Readonly<Record<GithubTokenKind, string>> = {
  classic: 'a classic personal access token (ghp_)',
  'fine-grained': 'a fine-grained personal access token (github_pat_)',
  installation: 'a GitHub App installation token (ghs_)',
  oauth: 'an OAuth app token (gho_)',
  'user-to-server': 'a GitHub App user access token (ghu_)',
  refresh: 'a GitHub App refresh token (ghr_)',
  legacy: 'a token in the pre-2021 40-hex format (classic personal access or OAuth token)',
  jwt: 'a GitHub App JWT',
  unknown: 'a token of unknown shape',
};

/** Kinds the REST API does not take for these tools: said before anything is sent. */
const UNSUPPORTED: Partial<Record<GithubTokenKind, string>> = {
  refresh: 'a refresh token only mints user access tokens: store the user access token (ghu_) instead',
  jwt: 'a JWT authenticates as the app itself, which may not read repositories: store an installation token (ghs_) minted with it',
};

const PERMISSIONS: Partial<Record<GithubTokenKind, string>> = {
  'fine-grained': 'permissions are set per repository and GitHub does not list them here: try a tool call such as get_issue',
  installation: "permissions are the app's, granted per installation: try a tool call such as get_issue",
  'user-to-server': "permissions are the app's, limited to what the user may do: try a tool call such as get_issue",
};

/**
 * GitHub Enterprise Server with rate limiting off answers GET /rate_limit
 * 404 "Rate limiting is not enabled.", which proves nothing about the token.
 * No cheap GET in @octokit/openapi takes every kind of token, so the
 * confirming call follows the kind: GET /user takes a user's token and
 * refuses an installation's (`enabledForGitHubApps: false`, 403);
 * GET /installation/repositories takes only an installation's (403 for a
 * user's). A token of unknown shape tries both.
 */
const CONFIRM: Readonly<Record<GithubTokenKind, readonly string[]>> = {
  classic: ['/user'],
  'fine-grained': ['/user'],
  oauth: ['/user'],
  'user-to-server': ['/user'],
  legacy: ['/user'],
  installation: ['/installation/repositories'],
  unknown: ['/user', '/installation/repositories'],
  refresh: [],
  jwt: [],
};

type J = Record<string, unknown>;
const obj = (v: unknown): J => (v && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});

/**
 * GET /rate_limit: enabled for GitHub Apps (installation tokens may not call
 * GET /user), free of rate-limit cost, and present on GitHub.com, GHEC and
 * GHES (@octokit/openapi `x-github.enabledForGitHubApps: true`). A token GitHub
 * does not accept gets 401 there as anywhere.
 */
export async function probeGithub(api: GithubApi, signal: AbortSignal): Promise<string> {
  const kind = await api.tokenKind();
  const label = LABEL[kind];
  const refused = UNSUPPORTED[kind];
  if (refused !== undefined) throw new ProviderError('auth', `The stored credential is ${label}; ${refused}. Nothing was sent to GitHub.`);
  let res: RestResponse;
  try {
    res = await api.base.request({ method: 'GET', path: '/rate_limit', bucket: 'rate_limit', signal });
  } catch (e) {
    if (e instanceof ProviderError && e.kind === 'not_found' && /rate limiting is not enabled/i.test(e.message)) return confirm(api, kind, signal);
    throw e;
  }
  const parts = [`authenticated with ${label}`, ...(await credentialFacts(api, kind, res))];
  const core = obj(obj(obj(res.body).resources).core);
  if (typeof core.remaining === 'number' && typeof core.limit === 'number') parts.push(`rate limit remaining ${core.remaining} of ${core.limit}`);
  return parts.join('; ');
}

/** The rate-limit-free server's case: one call the credential's kind may make proves it (401 there fails the test). */
async function confirm(api: GithubApi, kind: GithubTokenKind, signal: AbortSignal): Promise<string> {
  const label = LABEL[kind];
  const tried: string[] = [];
  for (const path of CONFIRM[kind]) {
    try {
      const res = await api.base.request({ method: 'GET', path, ...(path === '/installation/repositories' ? { query: { per_page: 1 } } : {}), bucket: 'core', signal });
      return [`authenticated with ${label}`, ...(await credentialFacts(api, kind, res)), 'this server does not limit API rates'].join('; ');
    } catch (e) {
      if (!(e instanceof ProviderError) || e.kind === 'auth') throw e;
      tried.push(`GET ${path}: ${e.message}`);
      // 403: this endpoint does not take this kind of token; the next one may.
      if (e.kind !== 'forbidden') break;
    }
  }
  return `reached GitHub, but could not confirm the credential (${label}): this server does not limit API rates (404 on GET /rate_limit), and ${tried.join('; ')}`;
}

/**
 * What the answer's headers say about the credential: a classic token's scopes
 * and expiry. Scrubbed with the credential's own values: a token of a shape
 * `sanitize` does not know (40-hex, a JWT) echoed there is never printed.
 */
async function credentialFacts(api: GithubApi, kind: GithubTokenKind, res: RestResponse): Promise<string[]> {
  const scopes = header(res.headers, 'x-oauth-scopes');
  const expires = header(res.headers, 'github-authentication-token-expiration');
  const scrub = scopes !== undefined || expires !== undefined ? await api.base.scrub() : [];
  const parts: string[] = [];
  if (scopes !== undefined) parts.push(`scopes: ${scopes.trim() === '' ? '(none)' : sanitize(scopes, scrub)}`);
  else if (PERMISSIONS[kind] !== undefined) parts.push(PERMISSIONS[kind]);
  if (expires !== undefined) parts.push(`expires ${sanitize(expires, scrub)}`);
  return parts;
}

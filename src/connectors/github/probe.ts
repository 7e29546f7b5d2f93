/**
 * `gatehouse connector test` for GitHub: which kind of credential is stored
 * (from its prefix alone; the token is never shown), and one request every
 * supported kind may make.
 */
import { header, ProviderError, sanitize } from '../errors.js';
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
  let res;
  try {
    res = await api.base.request({ method: 'GET', path: '/rate_limit', bucket: 'rate_limit', signal });
  } catch (e) {
    // GitHub Enterprise Server with rate limiting turned off answers 404 "Rate limiting is not enabled." after accepting the token.
    if (e instanceof ProviderError && e.kind === 'not_found' && /rate limiting is not enabled/i.test(e.message)) {
      return `authenticated with ${label}; this server does not limit API rates`;
    }
    throw e;
  }
  const parts = [`authenticated with ${label}`];
  const scopes = header(res.headers, 'x-oauth-scopes');
  if (scopes !== undefined) parts.push(`scopes: ${scopes.trim() === '' ? '(none)' : sanitize(scopes)}`);
  else if (PERMISSIONS[kind] !== undefined) parts.push(PERMISSIONS[kind]);
  const expires = header(res.headers, 'github-authentication-token-expiration');
  if (expires !== undefined) parts.push(`expires ${sanitize(expires)}`);
  const core = obj(obj(obj(res.body).resources).core);
  if (typeof core.remaining === 'number' && typeof core.limit === 'number') parts.push(`rate limit remaining ${core.remaining} of ${core.limit}`);
  return parts.join('; ');
}

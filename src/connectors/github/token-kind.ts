/** A GitHub token's kind, from its shape alone (the token itself is never shown). */
export type GithubTokenKind = 'classic' | 'fine-grained' | 'installation' | 'oauth' | 'user-to-server' | 'refresh' | 'legacy' | 'jwt' | 'unknown';

// https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/
const PREFIXES: ReadonlyArray<[string, GithubTokenKind]> = [
  ['github_pat_', 'fine-grained'],
  ['ghp_', 'classic'],
  ['ghs_', 'installation'],
  ['gho_', 'oauth'],
  ['ghu_', 'user-to-server'],
  ['ghr_', 'refresh'],
];

/** The kind of a GitHub token, from its shape only. */
export function githubTokenKind(token: string): GithubTokenKind {
  const t = token.trim();
  for (const [prefix, kind] of PREFIXES) if (t.startsWith(prefix)) return kind;
  if (/^[0-9a-f]{40}$/.test(t)) return 'legacy';
  if (/^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(t)) return 'jwt';
  return 'unknown';
}

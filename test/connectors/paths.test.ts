import { describe, expect, it } from 'vitest';
import { filePath, numberSegment, PathArgError, segment, type SegmentKind } from '../../src/connectors/paths.js';

const attacks = ['..', '.', '../admin', '../../admin', 'a/b', '%2e%2e', '%2E%2e', 'a%2fb', 'a%2Fb', 'a%5cb', '%252e', 'a\\b', 'a\u0000b', 'a\nb', 'a\rb', 'a\u007fb', 'a?b=1', 'a#b', '', ' '];

describe('path segments: traversal and encoding tricks are refused', () => {
  it('has attacks', () => expect(attacks.length).toBeGreaterThan(15));
  const kinds: SegmentKind[] = ['githubOwner', 'githubRepo', 'jiraIssue', 'jiraProject', 'jiraTransition', 'slackChannel', 'slackTs'];
  for (const kind of kinds) {
    for (const a of attacks) {
      it(`${kind} refuses ${JSON.stringify(a)}`, () => expect(() => segment('x', a, kind)).toThrow(PathArgError));
    }
  }
});

describe('path segments: valid identifiers pass, encoded', () => {
  it.each([
    ['githubOwner', 'octo-org'],
    ['githubRepo', 'my.repo_name-2'],
    ['githubRepo', '.github'],
    ['jiraIssue', 'OPS-123'],
    ['jiraIssue', '10042'],
    ['jiraProject', 'OPS'],
    ['slackChannel', 'C0123ABCD'],
    ['slackTs', '1712345678.123456'],
  ] as Array<[SegmentKind, string]>)('%s %s', (kind, v) => expect(segment('x', v, kind)).toBe(encodeURIComponent(v)));

  it('GitHub owners: no leading, trailing or double hyphen', () => {
    for (const bad of ['-octo', 'octo-', 'oc--to', 'a'.repeat(40)]) expect(() => segment('owner', bad, 'githubOwner')).toThrow(PathArgError);
  });
  it('Enterprise Managed User logins (handle_shortcode) are accepted as owners', () => {
    const good = ['mona-cat_octo', 'octocat_acme', 'a_abc', 'A1-b2_SHORT123', `${'a'.repeat(30)}_abcdefgh`, 'a'.repeat(39), 'x'];
    for (const login of good) expect(segment('owner', login, 'githubOwner'), login).toBe(login);
  });
  it('GitHub login grammar: hyphen and underscore rules, 39 at most', () => {
    const bad = ['_octo', 'octo_', 'octo_ab', 'octo_abcdefghi', 'oc_to_acme', 'octo-_acme', '-octo_acme', 'octo__acme', 'oc.to', `${'a'.repeat(31)}_abcdefgh`, 'octo_ac-me'];
    expect(bad.length).toBeGreaterThan(8);
    for (const login of bad) expect(() => segment('owner', login, 'githubOwner'), login).toThrow(PathArgError);
  });
  it('Jira keys: lower case and slashes are refused', () => {
    for (const bad of ['ops-1', 'OPS-1/2', 'OPS-0', 'OPS-1 ']) expect(() => segment('issueKey', bad, 'jiraIssue')).toThrow(PathArgError);
  });
  it('numbers: positive safe integers only', () => {
    expect(numberSegment('n', 42)).toBe('42');
    for (const bad of [0, -1, 1.5, 2 ** 31, '1', '1/../x', NaN]) expect(() => numberSegment('n', bad)).toThrow(PathArgError);
  });
});

describe('file paths: each segment checked, then encoded', () => {
  it('encodes segments and keeps the separators', () => {
    expect(filePath('path', 'src/my file.ts')).toBe('src/my%20file.ts');
    expect(filePath('path', 'docs/ünïcode.md')).toBe(`docs/${encodeURIComponent('ünïcode.md')}`);
    expect(filePath('path', '/README.md')).toBe('README.md');
    expect(filePath('path', '')).toBe('');
  });
  it.each(['../x', 'a/../../b', 'a/./b', 'a//b', '%2e%2e/x', 'a%2fb', 'a\\b', 'a/b\u0000', 'a?x', 'a#x', '..'])('refuses %j', (p) => {
    expect(() => filePath('path', p)).toThrow(PathArgError);
  });
});

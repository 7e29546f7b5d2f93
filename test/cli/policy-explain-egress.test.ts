import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { policyCommand } from '../../src/cli/policy.js';
import { runGatehouse } from '../../src/cli/program.js';
import { Exit } from '../../src/errors.js';
import { captureIo, tmpDir } from '../policy/helpers.js';

const presets = join(import.meta.dirname, '../../policies/presets');

const main = `version: 1
extends: [${join(presets, 'balanced')}, ${join(presets, 'dev-tools')}]
rules:
  - id: local-dev-server
    match: { agent: coder, egress: { host: localhost, port: 8080 } }
    effect: allow
  - id: lan-glob
    match: { agent: coder, egress: { host: "10.*", port: 443 } }
    effect: allow
  - id: pypi-simple
    match: { agent: coder, egress: { host: pypi.org, port: 80, method: GET, path: "/simple/**" } }
    effect: allow
    limit: 100/minute
  - id: no-posts
    match: { agent: coder, egress: { host: pypi.org, port: 80, method: POST } }
    effect: deny
  - id: gh-connector
    match: { connector: github, egress: { host: api.github.com, port: 443 } }
    effect: allow
`;

async function explain(argv: string[], files: Record<string, string> = { 'main.yaml': main }) {
  const dir = tmpDir(files);
  const c = captureIo();
  const code = await runGatehouse(['policy', 'explain', '--policies', dir, ...argv], c.io, [policyCommand]);
  return { code, out: c.out(), err: c.err() };
}

describe('gatehouse policy explain --egress', () => {
  it('allow: the deciding rule, the target, the glob address note, every egress rule with its reason; exit 0', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'registry.npmjs.org:443']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toMatch(/^Decision: ALLOW by rule "dev-tools-packages" \(.*presets\/dev-tools\.yaml:\d+\)$/m);
    expect(r.out).toContain('Target:   agent "coder" → registry.npmjs.org:443, a CONNECT tunnel');
    expect(r.out).toContain('Address:  no deciding rule names registry.npmjs.org exactly (a glob decides): the proxy refuses the connection if the name resolves to a loopback, private');
    expect(r.out).toMatch(/^dev-tools-packages\s+allow\s+yes \*/m);
    expect(r.out).toMatch(/^dev-tools-github\s+allow\s+no\s+\S+\s+host "registry\.npmjs\.org" does not match "\{github\.com,/m);
    expect(r.out).toMatch(/^local-dev-server\s+allow\s+no\s+main\.yaml:4\s+host "registry\.npmjs\.org" does not match "localhost"/m);
    expect(r.out).not.toMatch(/^reads\s/m);
    expect(r.out).toContain('(7 rules about tool and model calls not shown; --all shows them)');
  });

  it('deny by default: ssh to github.com (port 22) names the port; exit 1', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'github.com:22']);
    expect(r.code).toBe(Exit.Failed);
    expect(r.out).toContain('Decision: DENY by the egress default (egress is opt-in)');
    expect(r.out).toContain('Address:  none: a denied connection is refused before any name is resolved');
    expect(r.out).toMatch(/^dev-tools-github\s+allow\s+no\s+\S+\s+port 22 is not 443$/m);
  });

  it('a look-alike host and plain http (port 80) to an allowed host are denied', async () => {
    for (const target of ['registry.npmjs.org.evil.example:443', 'evil.example:443', 'registry.npmjs.org:80']) {
      const r = await explain(['--agent', 'coder', '--egress', target]);
      expect(r.code, target).toBe(Exit.Failed);
      expect(r.out, target).toContain('Decision: DENY by the egress default');
    }
  });

  it('reads the target as the proxy does: upper case and a trailing dot are the same name', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'GitHub.COM.:443']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain('→ github.com:443, a CONNECT tunnel');
  });

  it('an exact host name may reach loopback and private addresses: the note says so', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'localhost:8080']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain('Decision: ALLOW by rule "local-dev-server" (main.yaml:4)');
    expect(r.out).toContain('Address:  a rule names localhost exactly, so it may resolve to any address, loopback and private ones included');
  });

  it('a glob rule cannot reach a private IP literal: allowed by the rule, refused by the proxy; exit 1', async () => {
    const r = await explain(['--agent', 'coder', '--egress', '10.0.0.5:443', '--json']);
    expect(r.code).toBe(Exit.Failed);
    const j = JSON.parse(r.out);
    expect(j.decision).toMatchObject({ effect: 'allow', ruleId: 'lan-glob', hostNamed: false });
    expect(j.address).toMatchObject({ checked: true, refused: true });
    expect(j.address.note).toContain('10.0.0.5 is a private (RFC 1918) address: the proxy refuses it');
  });

  it('plain HTTP: --method and --path are matched (path without the query), with the rule limit shown', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'pypi.org:80', '--method', 'get', '--path', '/simple/requests/?x=1']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain('Decision: ALLOW by rule "pypi-simple" (main.yaml:10)');
    expect(r.out).toContain('Limit:    100 per 1m per agent');
    expect(r.out).toContain('→ pypi.org:80, plain HTTP GET /simple/requests/');
    expect(r.out).toMatch(/^no-posts\s+deny\s+no\s+main\.yaml:\d+\s+method GET is not POST$/m);
  });

  it('a tunnel to a host:port that a method rule names: the allow rule does not match, the deny rule does (fail closed)', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'pypi.org:80']);
    expect(r.code).toBe(Exit.Failed);
    expect(r.out).toContain('Decision: DENY by rule "no-posts"');
    expect(r.out).toMatch(/^pypi-simple\s+allow\s+no\s+\S+\s+a tunnel \(CONNECT\) shows no method or path; an allow rule on them does not match it$/m);
    expect(r.out).toMatch(/^no-posts\s+deny\s+yes \*\s+\S+\s+a tunnel \(CONNECT\) shows no method or path; a deny rule on them counts as matching$/m);
  });

  it('--connector NAME is the caller instead of --agent: the preset does not cover connectors', async () => {
    const gh = await explain(['--connector', 'github', '--egress', 'api.github.com:443']);
    expect(gh.code).toBe(Exit.Ok);
    expect(gh.out).toContain('Decision: ALLOW by rule "gh-connector"');
    expect(gh.out).toContain('Target:   connector "github" → api.github.com:443');
    const other = await explain(['--connector', 'slack', '--egress', 'github.com:443']);
    expect(other.code).toBe(Exit.Failed);
    expect(other.out).toMatch(/^dev-tools-github\s+allow\s+no\s+\S+\s+not from an agent matching "\*"$/m);
  });

  it('--json prints the connection, the decision, the address note and the egress rules', async () => {
    const r = await explain(['--agent', 'coder', '--egress', '[::1]:8080', '--json']);
    expect(r.code).toBe(Exit.Failed);
    const j = JSON.parse(r.out);
    expect(j.connection).toEqual({ caller: { kind: 'agent', name: 'coder' }, host: '::1', port: 8080, literal: true, tunnel: true });
    expect(j.decision).toEqual({ effect: 'deny', ruleId: null, message: 'No egress rule matches this connection; egress is denied by default.', hostNamed: false });
    expect(j.rules.map((x: { id: string }) => x.id)).toEqual(['dev-tools-packages', 'dev-tools-github', 'local-dev-server', 'lan-glob', 'pypi-simple', 'no-posts', 'gh-connector']);
  });

  it('--all lists the tool rules too, each "not an egress rule"', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'pypi.org:443', '--all']);
    expect(r.out).toMatch(/^reads\s+allow\s+no\s+\S+\s+not an egress rule$/m);
    expect(r.out).not.toContain('not shown');
  });

  it('ask: the ask settings, the address check that applies once a human approves; exit 0 as for tool calls', async () => {
    const asks = 'version: 1\nrules:\n  - id: gists-ask\n    match: { agent: coder, egress: { host: "gist.github{,usercontent}.com", port: 443 } }\n    effect: ask\n    ask: { timeout: 2m }\n';
    const r = await explain(['--agent', 'coder', '--egress', 'gist.github.com:443'], { 'main.yaml': asks });
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain('Decision: ASK by rule "gists-ask" (main.yaml:3)');
    expect(r.out).toContain('Ask:      timeout 2m, no grants');
    expect(r.out).toContain('Address:  if a human approves: no deciding rule names gist.github.com exactly (a glob decides)');
  });

  it('a policy without egress rules says every connection is denied', async () => {
    const r = await explain(['--agent', 'coder', '--egress', 'pypi.org:443'], { 'main.yaml': 'version: 1\ndefault: allow\n' });
    expect(r.code).toBe(Exit.Failed);
    expect(r.out).toContain('No egress rule in the policy: every connection is denied.');
  });
});

describe('gatehouse policy explain --egress: usage errors (exit 2, the fix, the value escaped)', () => {
  const usage = async (argv: string[]) => {
    const r = await explain(argv);
    expect(r.code, argv.join(' ')).toBe(Exit.Usage);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^gatehouse policy explain: /);
    expect(r.err).toContain('Run "gatehouse policy explain --help" for usage.');
    return r.err;
  };

  it('no port: says which port to add', async () => {
    expect(await usage(['--agent', 'a', '--egress', 'registry.npmjs.org'])).toContain('--egress: "registry.npmjs.org" has no port; write registry.npmjs.org:443 (https) or registry.npmjs.org:80 (http)');
  });

  it.each([
    ['port 0', 'github.com:0', 'port: 1 to 65535'],
    ['port 65536', 'github.com:65536', 'port: 1 to 65535'],
    ['a space', 'github.com :443', 'not a host name'],
    ['a path', 'github.com:443/x', 'port: digits only'],
    ['userinfo', 'me@github.com:443', 'userinfo'],
    ['an abbreviated IPv4', '127.1:443', 'not a canonical IPv4 address'],
  ])('%s is not host:port, with an example', async (_what, value, reason) => {
    const err = await usage(['--agent', 'a', '--egress', value]);
    expect(err).toContain(`--egress: ${JSON.stringify(value)} is not host:port (`);
    expect(err).toContain(reason);
    expect(err).toContain('e.g. --egress registry.npmjs.org:443');
  });

  it('a URL: give host:port, and how to ask about plain HTTP', async () => {
    const err = await usage(['--agent', 'a', '--egress', 'https://registry.npmjs.org/left-pad']);
    expect(err).toContain('is a URL; give host:port');
    expect(err).toContain('--method GET --path /path');
  });

  it('control characters and bidi overrides in a hostile host are escaped, never written raw', async () => {
    const err = await usage(['--agent', 'a', '--egress', 'evil\x1b[2J\u202e.example:443']);
    expect(err).not.toMatch(/[\x1b\u202e]/);
    expect(err).toContain('\\u001b[2J');
    expect(err).toContain('\\u202e');
  });

  it('the caller: neither or both of --agent and --connector', async () => {
    expect(await usage(['--egress', 'github.com:443'])).toContain('--egress needs the caller: --agent NAME or --connector NAME');
    expect(await usage(['--agent', 'a', '--connector', 'c', '--egress', 'github.com:443'])).toContain('--egress needs the caller');
  });

  it('tool-call flags are refused with --egress', async () => {
    for (const [flag, value] of [['--tool', 't'], ['--args', '{}'], ['--annotations', '{}'], ['--time', '2025-01-06T09:00:00Z'], ['--upstream-tool', 'x']] as const) {
      expect(await usage(['--agent', 'a', '--egress', 'github.com:443', flag, value])).toContain(`${flag} is for a tool call, not with --egress`);
    }
  });

  it('--method and --path: together, with --egress, a real method, a request path; CONNECT means leave them out', async () => {
    expect(await usage(['--agent', 'a', '--method', 'GET', '--path', '/'])).toContain('give --egress HOST:PORT too');
    expect(await usage(['--agent', 'a', '--egress', 'pypi.org:80', '--method', 'GET'])).toContain('--method and --path go together');
    expect(await usage(['--agent', 'a', '--egress', 'pypi.org:80', '--method', 'G ET', '--path', '/'])).toContain('is not an HTTP method');
    expect(await usage(['--agent', 'a', '--egress', 'pypi.org:80', '--method', 'CONNECT', '--path', '/'])).toContain('leave out --method and --path');
    for (const path of ['simple/', '/a b', '/a\x07', '/a#b']) {
      expect(await usage(['--agent', 'a', '--egress', 'pypi.org:80', '--method', 'GET', '--path', path]), path).toContain('is not a request path');
    }
  });

  it('without --tool or --egress the message names both forms', async () => {
    expect(await usage(['--agent', 'a'])).toContain('explain needs --agent and --tool (a tool call), or --agent or --connector and --egress HOST:PORT');
  });
});

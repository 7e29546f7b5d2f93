import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { policyCommand } from '../../src/cli/policy.js';
import { runGatehouse } from '../../src/cli/program.js';
import { Exit } from '../../src/errors.js';
import { captureIo, tmpDir } from './helpers.js';

const good = {
  'main.yaml': `version: 1
rules:
  - id: gh-read
    match: { tool: "github__get_*" }
    effect: allow
  - id: issues
    match: { agent: "coder*", tool: github__create_issue, args: { owner: { equals: acme } } }
    effect: allow
    limit: 20/hour
  - id: post
    match: { tool: slack__post_message }
    effect: ask
    ask: { timeout: 5m, grant: { ttl: 1h, maxUses: 10 } }
  - id: never-delete
    match: { tool: "*__delete_*" }
    effect: deny
    message: "Deleting is not allowed for agents."
`,
};

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const c = captureIo(env);
  const code = await runGatehouse(['policy', ...argv], c.io, [policyCommand]);
  return { code, out: c.out(), err: c.err() };
}

describe('gatehouse policy check', () => {
  it('a valid folder: exit 0 and a table of files', async () => {
    const dir = tmpDir(good);
    const r = await run(['check', '--policies', dir]);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain('4 rules from 1 files, default deny');
    expect(r.out).toMatch(/FILE\s+RULES\nmain\.yaml\s+4/);
  });
  it('--json prints the result as data', async () => {
    const dir = tmpDir(good);
    const r = await run(['check', '--policies', dir, '--json']);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, default: 'deny', rules: 4, files: [{ rules: 4 }] });
  });
  it('an invalid folder: exit 1 and every problem as file:line:col: key', async () => {
    const dir = tmpDir({ 'main.yaml': 'version: 1\nrules:\n  - id: a\n    effect: permit\n  - id: b\n    effect: allow\n    limit: lots\n' });
    const r = await run(['check', '--policies', dir]);
    expect(r.code).toBe(Exit.Failed);
    expect(r.out).toContain(`${join(dir, 'main.yaml')}:4:5: rules[0].effect:`);
    expect(r.out).toContain(`${join(dir, 'main.yaml')}:7:5: rules[1].limit:`);
    const j = await run(['check', '--policies', dir, '--json']);
    expect(j.code).toBe(Exit.Failed);
    expect(JSON.parse(j.out).issues).toHaveLength(2);
  });
  it('takes the folder from GATEHOUSE_POLICIES when --policies is not given', async () => {
    const dir = tmpDir(good);
    expect((await run(['check'], { GATEHOUSE_POLICIES: dir })).code).toBe(Exit.Ok);
  });
  it('an unknown flag is a usage error (exit 2)', async () => {
    const r = await run(['check', '--polices', 'x']);
    expect(r.code).toBe(Exit.Usage);
    expect(r.err).toMatch(/polices/);
  });
});

describe('gatehouse policy explain', () => {
  it('prints the decision, the deciding rule and the nearby rules; exit 0 on allow', async () => {
    const dir = tmpDir(good);
    const r = await run(['explain', '--policies', dir, '--agent', 'coder-1', '--tool', 'github__create_issue', '--args', '{"owner":"acme"}']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain('Decision: ALLOW by rule "issues" (main.yaml:6)');
    expect(r.out).toContain('Limit:    20 per 1h per agent');
    expect(r.out).toMatch(/issues\s+allow\s+yes \*/);
    expect(r.out).not.toMatch(/^gh-read/m);
    expect(r.out).toContain('rules about other tools not shown');
  });
  it('exit 1 on deny, with the reason each rule did not match', async () => {
    const dir = tmpDir(good);
    const r = await run(['explain', '--policies', dir, '--agent', 'coder-1', '--tool', 'github__create_issue', '--args', '{"owner":"evil"}']);
    expect(r.code).toBe(Exit.Failed);
    expect(r.out).toContain('Decision: DENY by the policy default');
    expect(r.out).toContain('args.owner: equals "acme" failed (got "evil")');
  });
  it('--all lists every rule', async () => {
    const dir = tmpDir(good);
    const r = await run(['explain', '--policies', dir, '--agent', 'a', '--tool', 'github__create_issue', '--all']);
    expect(r.out).toMatch(/^gh-read/m);
    expect(r.out).toMatch(/^never-delete/m);
  });
  it('shows ask settings; exit 0 on ask', async () => {
    const dir = tmpDir(good);
    const r = await run(['explain', '--policies', dir, '--agent', 'a', '--tool', 'slack__post_message']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain('Ask:      timeout 5m, grants up to 1h / 10 uses');
  });
  it('--json prints the call, the decision and the rules', async () => {
    const dir = tmpDir(good);
    const r = await run(['explain', '--policies', dir, '--agent', 'a', '--tool', 'github__delete_repo', '--json', '--time', '2025-01-06T10:00:00Z']);
    expect(r.code).toBe(Exit.Failed);
    const j = JSON.parse(r.out);
    expect(j.call).toMatchObject({ agent: 'a', connector: 'github', upstreamTool: 'delete_repo', time: '2025-01-06T10:00:00.000Z' });
    expect(j.decision).toEqual({ effect: 'deny', ruleId: 'never-delete', message: 'Deleting is not allowed for agents.' });
    expect(j.rules.find((x: { id: string }) => x.id === 'never-delete')).toMatchObject({ matched: true, decisive: true });
  });
  it('usage errors exit 2: missing --agent, bad --args JSON, --args not an object, bad --time, bad annotation', async () => {
    const dir = tmpDir(good);
    const base = ['explain', '--policies', dir, '--tool', 't'];
    for (const argv of [
      base,
      [...base, '--agent', 'a', '--args', '{nope'],
      [...base, '--agent', 'a', '--args', '[1]'],
      [...base, '--agent', 'a', '--time', 'yesterday'],
      [...base, '--agent', 'a', '--annotations', '{"readonly":true}'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(Exit.Usage);
      expect(r.err).toMatch(/^gatehouse policy explain: /);
      expect(r.err).toContain('Run "gatehouse policy explain --help" for usage.');
    }
  });
  it('an invalid policy exits 2 with the problems on stderr', async () => {
    const dir = tmpDir({ 'main.yaml': 'version: 2\n' });
    const r = await run(['explain', '--policies', dir, '--agent', 'a', '--tool', 't']);
    expect(r.code).toBe(Exit.Usage);
    expect(r.err).toContain('main.yaml:1:');
  });
});

describe('gatehouse policy test', () => {
  const cases = `cases:
  - name: acme issue
    agent: coder-1
    tool: github__create_issue
    args: { owner: acme }
    expect: allow
    expectRule: issues
  - name: delete
    agent: coder-1
    tool: github__delete_repo
    expect: deny
`;
  it('all cases pass: exit 0 and a summary line', async () => {
    const root = tmpDir({ 'policies/main.yaml': good['main.yaml'], 'cases.yaml': cases });
    const r = await run(['test', join(root, 'cases.yaml'), '--policies', join(root, 'policies')]);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toMatch(/pass\s+acme issue/);
    expect(r.out).toContain('2 passed, 0 failed');
  });
  it('a failing case: exit 1 and what went wrong', async () => {
    const root = tmpDir({ 'policies/main.yaml': good['main.yaml'], 'cases.yaml': cases.replace('expect: deny', 'expect: allow') });
    const r = await run(['test', join(root, 'cases.yaml'), '--policies', join(root, 'policies')]);
    expect(r.code).toBe(Exit.Failed);
    expect(r.out).toMatch(/FAIL\s+delete\s+8\s+allow\s+deny\s+never-delete\s+expected allow, got deny/);
    expect(r.out).toContain('1 passed, 1 failed');
  });
  it('--json prints the report', async () => {
    const root = tmpDir({ 'policies/main.yaml': good['main.yaml'], 'cases.yaml': cases });
    const r = await run(['test', join(root, 'cases.yaml'), '--policies', join(root, 'policies'), '--json']);
    expect(JSON.parse(r.out)).toMatchObject({ passed: 2, failed: 0 });
  });
  it('no FILE, or an invalid cases file, exits 2', async () => {
    const root = tmpDir({ 'policies/main.yaml': good['main.yaml'], 'cases.yaml': 'cases: []\n' });
    expect((await run(['test', '--policies', join(root, 'policies')])).code).toBe(Exit.Usage);
    const r = await run(['test', join(root, 'cases.yaml'), '--policies', join(root, 'policies')]);
    expect(r.code).toBe(Exit.Usage);
    expect(r.err).toMatch(/cases/);
  });
});

describe('gatehouse policy --help', () => {
  it.each([['check'], ['explain'], ['test']])('%s --help prints its usage and exits 0', async (sub) => {
    const r = await run([sub, '--help']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toContain(`Usage: gatehouse policy ${sub}`);
    expect(r.out).toContain('--policies <dir>');
  });
  it('policy --help lists the commands', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(Exit.Ok);
    expect(r.out).toMatch(/check[\s\S]*explain[\s\S]*test/);
  });
  it('an unknown or missing sub-command is a usage error', async () => {
    expect((await run(['frobnicate'])).code).toBe(Exit.Usage);
    expect((await run([])).code).toBe(Exit.Usage);
  });
});

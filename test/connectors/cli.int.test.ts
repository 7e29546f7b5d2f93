import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/command.js';
import { connectorCommandWith } from '../../src/cli/connector.js';
import { runGatehouse } from '../../src/cli/program.js';
import { listTemplates, templatesDir } from '../../src/connectors/templates.js';
import { loadRegistry } from '../../src/registry/load.js';
import { parseYamlConfig } from '../../src/config/load-yaml.js';
import { ConnectorSchema } from '../../src/registry/schema.js';
import { MemoryStore } from './helpers.js';
import { GITHUB_APP_TOKEN, GITHUB_TOKEN, startGithubSim, type GithubSim } from './sim/github.js';
import { SLACK_TOKEN, startSlackSim } from './sim/slack.js';
import { JIRA_API_TOKEN, JIRA_EMAIL, startJiraSim } from './sim/jira.js';
import type { Sim } from './sim/base.js';
import { tempDir } from '../helpers/tmp.js';

const RATE_LIMIT_OFF = { message: 'Rate limiting is not enabled.', documentation_url: 'https://docs.github.com/enterprise-server@3.17/rest' };

function io(): { io: Io; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (s) => void (out += s), err: (s) => void (err += s), env: {}, stdin: process.stdin, isTTY: false }, out: () => out, err: () => err };
}

let gh: GithubSim;
let slack: Sim;
let jira: Sim;
let root: string;
let registry: string;
const store = new MemoryStore();
const cmd = connectorCommandWith(() => store);
async function run(...argv: string[]) {
  const c = io();
  const code = await runGatehouse(['connector', ...argv, '--registry', registry, '--state', join(root, 'state')], c.io, [cmd]);
  return { code, out: c.out(), err: c.err() };
}

beforeAll(async () => {
  [gh, slack, jira] = await Promise.all([startGithubSim(), startSlackSim(), startJiraSim()]);
  root = tempDir('gatehouse-cli-connector-');
  registry = join(root, 'registry');
  mkdirSync(registry);
});
afterAll(async () => {
  await Promise.all([gh?.close(), slack?.close(), jira?.close()]);
});

describe('templates', () => {
  it('every template is a valid registry file, with no secret value in it', () => {
    const all = listTemplates();
    expect(all.map((t) => t.name).sort()).toEqual(['anthropic', 'atlassian-mcp', 'github', 'github-mcp', 'jira-cloud', 'jira-datacenter', 'openai', 'openai-compatible', 'slack', 'slack-mcp']);
    for (const t of all) {
      const file = join(templatesDir(), `${t.name}.yaml`);
      const c = parseYamlConfig(file, readFileSync(file, 'utf8'), ConnectorSchema);
      expect(c.name).toMatch(/^[a-z]/);
    }
  });
  it('the gateway does not load templates (top-level registry/*.yaml only)', () => {
    const shipped = loadRegistry(join(templatesDir(), '..'));
    expect(shipped.connectors.every((c) => !c.file.includes('templates'))).toBe(true);
  });
});

describe('gatehouse connector add', () => {
  it('writes registry/<name>.yaml and prints the next steps', async () => {
    const r = await run('add', 'github', '--base-url', gh.url);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Wrote .*github\.yaml.*secret set github-token.*connector test github/s);
    const text = readFileSync(join(registry, 'github.yaml'), 'utf8');
    expect(text).toContain(`baseUrl: ${gh.url}`);
    expect(text).toContain('${secret:github-token}');
  });

  it('refuses to overwrite without --force', async () => {
    const r = await run('add', 'github');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/already exists; pass --force/);
    expect((await run('add', 'github', '--force', '--base-url', gh.url)).code).toBe(0);
  });

  it('--name renames the connector and its secret; --secret overrides', async () => {
    const a = await run('add', 'slack', '--name', 'chat', '--base-url', slack.url);
    expect(a.code).toBe(0);
    expect(readFileSync(join(registry, 'chat.yaml'), 'utf8')).toContain('${secret:chat-bot-token}');
    const b = await run('add', 'jira-cloud', '--secret', 'jira-api-token', '--base-url', jira.url, '--email', JIRA_EMAIL);
    expect(b.code).toBe(0);
    expect(b.out).toContain('secret set jira-api-token');
    expect(readFileSync(join(registry, 'jira.yaml'), 'utf8')).toContain(`email: ${JIRA_EMAIL}`);
  });

  it('validates the result with the registry schema before writing', async () => {
    const before = readdirSync(registry).length;
    const r = await run('add', 'github', '--name', 'ghx', '--base-url', 'http://example.com/api/v3');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/baseUrl: use https/);
    const s = await run('add', 'github', '--name', 'ghy', '--secret', 'bad name');
    expect(s.code).toBe(2);
    expect(s.err).toMatch(/--secret/);
    const t = await run('add', 'nosuch');
    expect(t.code).toBe(2);
    expect(t.err).toMatch(/no template "nosuch"; templates: anthropic, atlassian-mcp, github/);
    expect(readdirSync(registry).length).toBe(before);
  });

  it('a model provider: --name renames it and its key; --base-url sets its url (an OpenAI-compatible local server)', async () => {
    const r = await run('add', 'openai-compatible', '--name', 'local-llm', '--base-url', 'http://127.0.0.1:11434');
    expect(r.code).toBe(0);
    expect(r.out).toContain('secret set local-llm-key');
    const text = readFileSync(join(registry, 'local-llm.yaml'), 'utf8');
    expect(text).toContain('url: http://127.0.0.1:11434');
    expect(text).toContain('kind: inference');
    // A provider key never crosses a network in clear: plain http only to loopback.
    const bad = await run('add', 'openai-compatible', '--name', 'remote-llm', '--base-url', 'http://llm.example.com');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/url: use https/);
  });

  it('--help lists the templates', async () => {
    const r = await run('add', '--help');
    expect(r.out).toMatch(/github-mcp.*GitHub remote MCP server/);
  });
});

describe('gatehouse connector list', () => {
  it('shows ready or why not, and the tools exposed, offline', async () => {
    writeFileSync(join(registry, 'remote.yaml'), 'name: remote\nkind: http\nurl: http://127.0.0.1:9/mcp\nheaders: {}\n');
    writeFileSync(join(registry, 'narrow.yaml'), `name: narrow\nkind: github\nbaseUrl: ${gh.url}\ntoken: "\${secret:narrow-token}"\ntools: { allow: ["get_*"] }\n`);
    store.values.set('github-token', GITHUB_TOKEN);
    store.values.set('narrow-token', GITHUB_TOKEN);
    const r = await run('list', '--json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as Array<{ name: string; ready: boolean; fix?: string; tools: string[] | null }>;
    const by = Object.fromEntries(rows.map((x) => [x.name, x]));
    expect(by.github).toMatchObject({ ready: true });
    expect(by.github?.tools).toHaveLength(9);
    expect(by.narrow?.tools).toEqual(['get_issue', 'get_pull_request', 'get_file_contents']);
    expect(by.chat).toMatchObject({ ready: false, fix: 'gatehouse secret set chat-bot-token' });
    expect(by.remote).toMatchObject({ ready: true, tools: null });
    const table = await run('list');
    expect(table.out).toMatch(/chat\s+slack\s+not ready: secret not set: chat-bot-token/);
    expect(table.out).toMatch(/remote\s+http\s+ready\s+n\/a until served/);
  });
});

describe('gatehouse connector test', () => {
  it('github: ok with the credential kind, scopes and expiry, from GET /rate_limit', async () => {
    gh.reset();
    const r = await run('test', 'github');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/github \(github\): ok: authenticated with a classic personal access token \(ghp_\); scopes: repo, read:org; expires 2031-01-01 00:00:00 UTC; rate limit remaining 4999 of 5000/);
    expect(gh.requests.map((q) => [q.path, q.authorization])).toEqual([['/rate_limit', `Bearer ${GITHUB_TOKEN}`]]);
    expect(r.out).not.toContain(GITHUB_TOKEN.slice(4));
  });
  it('github: an app installation token passes (GitHub refuses it GET /user) and is named as one', async () => {
    gh.reset();
    writeFileSync(join(registry, 'ghapp.yaml'), `name: ghapp\nkind: github\nbaseUrl: ${gh.url}\ntoken: "\${secret:ghapp-token}"\n`);
    store.values.set('ghapp-token', GITHUB_APP_TOKEN);
    const r = await run('test', 'ghapp', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, detail: expect.stringMatching(/^authenticated with a GitHub App installation token \(ghs_\); permissions are the app's, granted per installation/) });
    expect(gh.requests.map((q) => q.path)).toEqual(['/rate_limit']);
    expect(r.out).not.toContain(GITHUB_APP_TOKEN.slice(4));
  });
  it('github: a GitHub Enterprise Server with rate limiting off (404 on /rate_limit) still passes, once GET /user accepts the token', async () => {
    gh.reset();
    gh.inject({ status: 404, body: RATE_LIMIT_OFF, path: /rate_limit/ });
    const r = await run('test', 'github');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ok: authenticated with a classic personal access token \(ghp_\); scopes: repo, read:org; this server does not limit API rates/);
    expect(gh.requests.map((q) => [q.path, q.authorization])).toEqual([
      ['/rate_limit', `Bearer ${GITHUB_TOKEN}`],
      ['/user', `Bearer ${GITHUB_TOKEN}`],
    ]);
    gh.inject({ status: 404, body: { message: 'Not Found' }, path: /rate_limit/ });
    const wrongBase = await run('test', 'github');
    expect(wrongBase.code).toBe(1);
    expect(wrongBase.err).toMatch(/found nothing there \(404: Not Found\)/);
  });
  it('github: a 404 "Rate limiting is not enabled" proves nothing: authenticated only once a call the token\'s kind may make accepts it', async () => {
    // An installation token may not call GET /user: GET /installation/repositories confirms it.
    gh.reset();
    gh.inject({ status: 404, body: RATE_LIMIT_OFF, path: /rate_limit/ });
    const app = await run('test', 'ghapp', '--json');
    expect(app.code).toBe(0);
    expect(JSON.parse(app.out)).toMatchObject({ ok: true, detail: expect.stringMatching(/^authenticated with a GitHub App installation token \(ghs_\); .*this server does not limit API rates$/) });
    expect(gh.requests.map((q) => q.path)).toEqual(['/rate_limit', '/installation/repositories']);
    // The same 404 in front of a token the server then rejects: FAILED, not "authenticated".
    gh.reset();
    gh.inject({ status: 404, body: RATE_LIMIT_OFF, path: /rate_limit/ });
    gh.inject({ status: 401, body: { message: 'Bad credentials' }, path: /\/user$/ });
    const rejected = await run('test', 'github');
    expect(rejected.code).toBe(1);
    expect(rejected.err).toMatch(/FAILED: GitHub rejected the connector's credential \(401: Bad credentials\)/);
    // Neither accepted nor rejected: said as such.
    gh.reset();
    gh.inject({ status: 404, body: RATE_LIMIT_OFF, path: /rate_limit/ });
    gh.inject({ status: 404, body: { message: 'Not Found' }, path: /\/user$/ });
    const unsure = await run('test', 'github');
    expect(unsure.out).toMatch(/ok: reached GitHub, but could not confirm the credential \(a classic personal access token \(ghp_\)\): this server does not limit API rates/);
    expect(unsure.out).not.toMatch(/authenticated/);
  });
  it('github: a token echoed in X-OAuth-Scopes is never printed by connector test', async () => {
    // Shapes sanitize's built-in patterns do not know: only the credential's own value can scrub them.
    const tokens = { legacy: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3', odd: 'v1.0123456789abcdef0123456789abcdef01234567' };
    expect(Object.keys(tokens).length).toBeGreaterThan(0);
    for (const [name, token] of Object.entries(tokens)) {
      writeFileSync(join(registry, `echo-${name}.yaml`), `name: echo-${name}\nkind: github\nbaseUrl: ${gh.url}\ntoken: "\${secret:echo-${name}-token}"\n`);
      store.values.set(`echo-${name}-token`, token);
      for (const json of [[], ['--json']]) {
        gh.reset();
        gh.inject({ status: 200, headers: { 'x-oauth-scopes': `repo, ${token}`, 'github-authentication-token-expiration': `never (${token})` }, body: { resources: {} }, path: /rate_limit/ });
        const r = await run('test', `echo-${name}`, ...json);
        expect(r.code).toBe(0);
        expect(r.out + r.err).not.toContain(token);
        expect(r.out).toMatch(/scopes: repo, \[redacted\].*expires never \(\[redacted\]\)/);
      }
    }
  });
  it('github: a refresh token or an app JWT is refused before anything is sent, naming what to store', async () => {
    gh.reset();
    store.values.set('ghapp-token', 'ghr_SIMULATEDrefreshTOKEN0123456789abcdef');
    const r = await run('test', 'ghapp');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAILED: The stored credential is a GitHub App refresh token \(ghr_\); .*store the user access token \(ghu_\) instead\. Nothing was sent to GitHub/);
    expect(r.err).not.toContain('SIMULATEDrefresh');
    store.values.set('ghapp-token', 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl');
    const jwt = await run('test', 'ghapp');
    expect(jwt.code).toBe(1);
    expect(jwt.err).toMatch(/FAILED: The stored credential is a GitHub App JWT; .*store an installation token \(ghs_\)/);
    expect(jwt.err).not.toContain('eyJpc3Mi');
    expect(gh.requests).toHaveLength(0);
    store.values.set('ghapp-token', GITHUB_APP_TOKEN);
  });
  it('slack and jira', async () => {
    store.values.set('chat-bot-token', SLACK_TOKEN);
    store.values.set('jira-api-token', JIRA_API_TOKEN);
    const s = await run('test', 'chat', '--json');
    expect(JSON.parse(s.out)).toMatchObject({ ok: true, detail: expect.stringMatching(/gatehouse-bot.*Acme; scopes: channels:read/) });
    const j = await run('test', 'jira');
    expect(j.out).toMatch(/authenticated as Gatehouse Bot \(5b10ac8d82e05b22cc7d4ef5\) on Jira Cloud \(REST v3\), by deployment in the registry/);
    expect(j.code).toBe(0);
  });
  it('a rejected token: exit 1 with the precise error', async () => {
    store.values.set('github-token', 'ghp_wrong');
    const r = await run('test', 'github');
    store.values.set('github-token', GITHUB_TOKEN);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAILED: GitHub rejected the connector's credential \(401: Bad credentials\)/);
    expect(r.err + r.out).not.toContain('ghp_wrong');
  });
  it('a missing secret: exit 1 naming the fix', async () => {
    store.values.delete('narrow-token');
    const r = await run('test', 'narrow');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/gatehouse secret set narrow-token/);
  });
  it('an unreachable service: exit 3', async () => {
    const r = await run('test', 'remote');
    expect(r.err).toMatch(/remote \(http\): FAILED: fetch failed/);
    expect(r.code).toBe(3);
    writeFileSync(join(registry, 'dead.yaml'), `name: dead\nkind: github\nbaseUrl: http://127.0.0.1:9\ntoken: "\${secret:dead-token}"\n`);
    store.values.set('dead-token', 'ghp_deadbeefdeadbeef');
    const d = await run('test', 'dead');
    expect(d.code).toBe(3);
    expect(d.err).toMatch(/could not be reached/);
  });
  it('an unknown connector is a usage error', async () => {
    const r = await run('test', 'nope');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no connector "nope"/);
    expect(existsSync(join(registry, 'nope.yaml'))).toBe(false);
  });
});

/**
 * The pure parts of upstream OAuth: the checks on metadata, the login record
 * (what may be stored, its redaction, when it is due), the registry's
 * `oauth:` block (errors name file, line and key), and the templates.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseYamlConfig } from '../../../src/config/load-yaml.js';
import { ConnectorSchema, connectorSecrets, type Connector } from '../../../src/registry/schema.js';
import { Redactor } from '../../../src/secrets/redact.js';
import { agentOfEntry, isLoginEntryOf, learnLogin, loginEntry, loginNote, parseLogin, refreshDueAt, serializeLogin, type OAuthLogin } from '../../../src/secrets/oauth/login.js';
import { canonicalResource, checkOrigin, checkResource, checkTransport } from '../../../src/upstreams/oauth/checks.js';
import { authorizationServerUris } from '../../../src/upstreams/oauth/discovery.js';
import { quoted } from '../../../src/upstreams/oauth/errors.js';
import { ROOT } from '../../helpers/gateway.js';

const LOGIN: OAuthLogin = {
  v: 1,
  issuer: 'https://auth.example.com/',
  resource: 'https://mcp.example.com/mcp',
  tokenEndpoint: 'https://auth.example.com/token',
  clientId: 'client-1',
  clientSecret: 'registered-client-secret-1',
  clientAuth: 'client_secret_basic',
  accessToken: 'access-token-abcdef123456',
  refreshToken: 'refresh-token-abcdef123456',
  expiresAt: 1_000_000 + 3_600_000,
  obtainedAt: 1_000_000,
};

describe('metadata checks', () => {
  it('https everywhere, plain http only to this machine', () => {
    expect(checkTransport('https://auth.example.com/token', 'x').ok).toBe(true);
    for (const ok of ['http://127.0.0.1:8080/t', 'http://localhost/t', 'http://[::1]:9/t']) expect(checkTransport(ok, 'x').ok, ok).toBe(true);
    for (const bad of ['http://auth.example.com/token', 'http://127.0.0.1.attacker.example/t', 'ftp://auth.example.com/', 'javascript:alert(1)', 'not a url']) {
      expect(checkTransport(bad, 'x').ok, bad).toBe(false);
    }
  });

  it('origins compare whole (scheme, host, port)', () => {
    expect(checkOrigin('https://a.example.com/x', ['https://a.example.com'], 'x', 'fix').ok).toBe(true);
    for (const bad of ['http://a.example.com/x', 'https://a.example.com:444/x', 'https://a.example.com.evil.example/x', 'https://evil.example/a.example.com']) {
      expect(checkOrigin(bad, ['https://a.example.com'], 'x', 'fix').ok, bad).toBe(false);
    }
  });

  it('resource metadata must describe the MCP server (same origin, a path that covers it)', () => {
    expect(checkResource('https://mcp.example.com/mcp', 'https://mcp.example.com/mcp').ok).toBe(true);
    expect(checkResource('https://mcp.example.com', 'https://mcp.example.com/mcp').ok).toBe(true);
    expect(checkResource('https://mcp.example.com/mcp/', 'https://mcp.example.com/mcp').ok).toBe(true);
    for (const bad of ['https://mcp.example.com/mcpx', 'https://mcp.example.com/other', 'https://evil.example/mcp', 'http://mcp.example.com/mcp', 42, undefined]) {
      expect(checkResource(bad, 'https://mcp.example.com/mcp').ok, String(bad)).toBe(false);
    }
    expect(canonicalResource('HTTPS://MCP.Example.com/mcp#frag')).toBe('https://mcp.example.com/mcp');
  });

  it('authorization server metadata URIs in the MCP spec\'s order, path-aware', () => {
    expect(authorizationServerUris('https://auth.example.com')).toEqual(['https://auth.example.com/.well-known/oauth-authorization-server', 'https://auth.example.com/.well-known/openid-configuration']);
    expect(authorizationServerUris('https://auth.example.com/tenant1')).toEqual([
      'https://auth.example.com/.well-known/oauth-authorization-server/tenant1',
      'https://auth.example.com/.well-known/openid-configuration/tenant1',
      'https://auth.example.com/tenant1/.well-known/openid-configuration',
    ]);
  });

  it('a server\'s words are quoted without control characters and cut short', () => {
    expect(quoted('bad\r\nX-Injected: 1\u001b[2J')).toBe('bad  X-Injected: 1 [2J');
    expect(quoted('x'.repeat(500))).toHaveLength(200);
  });
});

describe('the login record', () => {
  it('round-trips, and refuses what is not a login (or a token unfit for a header)', () => {
    expect(parseLogin(serializeLogin(LOGIN))).toEqual(LOGIN);
    expect(parseLogin('not json')).toBeUndefined();
    expect(parseLogin(JSON.stringify({ ...LOGIN, v: 2 }))).toBeUndefined();
    expect(parseLogin(JSON.stringify({ ...LOGIN, extra: 1 }))).toBeUndefined();
    expect(parseLogin(JSON.stringify({ ...LOGIN, accessToken: 'abc\r\nX-Injected: 1' }))).toBeUndefined();
    expect(parseLogin(JSON.stringify({ ...LOGIN, accessToken: 'two words' }))).toBeUndefined();
  });

  it('entry names: bound to the connector by name, one per agent, no crossing between similar names', () => {
    expect(loginEntry('slack-mcp')).toBe('slack-mcp.oauth');
    expect(loginEntry('slack-mcp', 'alice@corp')).toBe('slack-mcp.oauth.agent.alice@corp');
    expect(agentOfEntry('slack-mcp', 'slack-mcp.oauth.agent.alice@corp')).toBe('alice@corp');
    expect(isLoginEntryOf('slack', 'slack-mcp.oauth')).toBe(false);
    expect(isLoginEntryOf('slack-mcp', 'slack.oauth')).toBe(false);
    expect(isLoginEntryOf('slack-mcp', 'slack-mcp.oauth.agent.')).toBe(false);
  });

  it('learns the tokens and the registered client secret for redaction, not the record whole', () => {
    const r = new Redactor();
    learnLogin(r, 'remote.oauth', serializeLogin(LOGIN));
    expect(r.redactText(`a ${LOGIN.accessToken} r ${LOGIN.refreshToken} s ${LOGIN.clientSecret}`)).toBe('a [REDACTED:remote.oauth] r [REDACTED:remote.oauth] s [REDACTED:remote.oauth]');
    expect(r.redactText(Buffer.from(LOGIN.accessToken).toString('base64'))).toBe('[REDACTED:remote.oauth]');
  });

  it('is due for refresh two minutes before expiry, or at half its life when that is shorter', () => {
    expect(refreshDueAt(LOGIN)).toBe(LOGIN.obtainedAt + 3_600_000 - 120_000);
    expect(refreshDueAt({ ...LOGIN, expiresAt: LOGIN.obtainedAt + 60_000 })).toBe(LOGIN.obtainedAt + 30_000);
    const { expiresAt: _e, ...noExpiry } = LOGIN;
    expect(refreshDueAt(noExpiry)).toBeUndefined();
  });

  it('connector list\'s note', () => {
    expect(loginNote(LOGIN, LOGIN.obtainedAt + 2 * 60_000)).toBe('oauth: expires in 58 min, refreshes itself');
    expect(loginNote(LOGIN, (LOGIN.expiresAt as number) + 1)).toBe('oauth: expired, refreshes itself');
    const { refreshToken: _r, ...once } = LOGIN;
    expect(loginNote(once, LOGIN.obtainedAt)).toBe('oauth: expires in 60 min, no refresh token: log in again when it expires');
  });
});

describe('registry oauth:', () => {
  const parse = (text: string) => parseYamlConfig('/registry/r.yaml', text, ConnectorSchema) as Connector;
  const issues = (text: string) => {
    try {
      parse(text);
    } catch (e) {
      if (e instanceof ConfigError) return e.message;
      throw e;
    }
    return '';
  };

  it('oauth: {} is enough; the client secret is a ${secret:} bound like any other', () => {
    const c = parse('name: r\nkind: http\nurl: https://mcp.example.com/mcp\noauth:\n  clientId: abc\n  clientSecret: "${secret:r-oauth-client-secret}"\n');
    expect(c.kind === 'http' && c.oauth?.per).toBe('connector');
    expect(connectorSecrets(c)).toEqual(['r-oauth-client-secret']);
    expect(parse('name: r\nkind: http\nurl: https://mcp.example.com/mcp\noauth: {}\n').kind).toBe('http');
  });

  it('refuses, naming file, line and key: a misspelt key, a literal client secret, plain http, an Authorization header besides, a path in allowOrigins', () => {
    expect(issues('name: r\nkind: http\nurl: https://m.example.com/mcp\noauth:\n  scope: [a]\n')).toMatch(/\/registry\/r\.yaml:5:\d+: oauth\.scope: /);
    expect(issues('name: r\nkind: http\nurl: https://m.example.com/mcp\noauth:\n  clientId: a\n  clientSecret: hunter2-literal\n')).toMatch(/r\.yaml:6:\d+: oauth\.clientSecret: must reference a secret/);
    expect(issues('name: r\nkind: http\nurl: http://m.example.com/mcp\noauth: {}\n')).toMatch(/r\.yaml:3:\d+: url: with oauth the url must be https/);
    expect(issues('name: r\nkind: http\nurl: https://m.example.com/mcp\nheaders:\n  Authorization: "Bearer ${secret:r-t}"\noauth: {}\n')).toMatch(/headers: with oauth the gateway sets Authorization itself/);
    expect(issues('name: r\nkind: http\nurl: https://m.example.com/mcp\noauth:\n  allowOrigins: ["https://a.example.com/path"]\n')).toMatch(/oauth\.allowOrigins: an origin only/);
    expect(issues('name: r\nkind: http\nurl: https://m.example.com/mcp\noauth:\n  clientSecret: "${secret:r-s}"\n')).toMatch(/oauth\.clientSecret needs oauth\.clientId/);
    expect(issues('name: r\nkind: http\nurl: https://m.example.com/mcp\noauth:\n  per: user\n')).toMatch(/oauth\.per: connector or agent/);
  });

  it('the Slack, Atlassian and GitHub MCP templates are valid and sign in with OAuth', () => {
    const dir = join(ROOT, 'registry', 'templates');
    const oauth = readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => parse(readFileSync(join(dir, f), 'utf8'))).filter((c) => c.kind === 'http' && c.oauth !== undefined).map((c) => c.name);
    expect(oauth.sort()).toEqual(['atlassian-mcp', 'github-mcp', 'slack-mcp']);
  });
});

/**
 * What an MCP server or an authorization server says decides where the
 * user's browser and the tokens go, so each step is checked before it is
 * believed. Each test is one lie, refused with a message that names it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../../src/errors.js';
import { discover, type OAuthTarget } from '../../../src/upstreams/oauth/discovery.js';
import { oauthFetch } from '../../../src/upstreams/oauth/http.js';
import { startAuthServer, startMcpResource, type AuthServer, type McpResource } from './servers.js';

let as: AuthServer;
let mcp: McpResource;
let hostile: { origin: string; routes: Map<string, { status?: number; headers?: Record<string, string>; body: string | Buffer }>; server: Server };

beforeAll(async () => {
  as = await startAuthServer();
  mcp = await startMcpResource(as);
  const routes = new Map<string, { status?: number; headers?: Record<string, string>; body: string | Buffer }>();
  const server = createServer((req, res) => {
    const r = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (!r) return void res.writeHead(404).end();
    res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...r.headers }).end(r.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hostile = { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, routes, server };
});
afterEach(() => {
  for (const k of Object.keys(as.metadata)) delete as.metadata[k];
  hostile.routes.clear();
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
  hostile?.server.close();
});

const http = oauthFetch();

function target(oauth: Partial<OAuthTarget['oauth']> = {}, url = mcp.url): OAuthTarget {
  return { name: 'remote', file: '/registry/remote.yaml', url, oauth: { allowOrigins: [], per: 'connector', flow: 'auto', ...oauth } };
}

async function refused(t: OAuthTarget): Promise<GatehouseError> {
  try {
    await discover(t, http);
  } catch (e) {
    if (e instanceof GatehouseError) return e;
    throw e;
  }
  throw new Error('discovery was expected to refuse');
}

/** A hostile MCP server at /mcp whose 401 names `metadata`, serving `prm` there. */
function hostileResource(prm: object | string, metadataPath = '/.well-known/oauth-protected-resource/mcp'): string {
  hostile.routes.set('/mcp', { status: 401, headers: { 'www-authenticate': `Bearer resource_metadata="${hostile.origin}${metadataPath}"` }, body: '{}' });
  hostile.routes.set(metadataPath, { body: typeof prm === 'string' ? prm : JSON.stringify(prm) });
  return `${hostile.origin}/mcp`;
}

describe('discovery against the real servers', () => {
  it('finds the authorization server through the 401 and the resource metadata, and asks for the MCP server as resource', async () => {
    const d = await discover(target({ authorizationServer: as.origin }), http);
    expect(d.issuer.replace(/\/$/, '')).toBe(as.origin);
    expect(d.resource).toBe(mcp.url);
    expect(d.as.code_challenge_methods_supported).toContain('S256');
  });

  it('an authorization server on another origin than the MCP server is used only when the registry names it (or allows its origin)', async () => {
    const e = await refused(target());
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toContain(`set oauth.authorizationServer: ${as.origin}`);
    const allowed = await discover(target({ allowOrigins: [as.origin] }), http);
    expect(allowed.issuer.replace(/\/$/, '')).toBe(as.origin);
  });
});

describe('hostile authorization server metadata', () => {
  it('issuer_mismatch_refused: metadata claiming another issuer (RFC 8414 §3.3)', async () => {
    as.metadata.issuer = 'https://auth.attacker.example';
    const e = await refused(target({ authorizationServer: as.origin }));
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toMatch(/issuer/);
  });

  it('plain_http_endpoint_refused: a token endpoint over plain http to a non-loopback host', async () => {
    as.metadata.token_endpoint = 'http://tokens.example.com/token';
    const e = await refused(target({ authorizationServer: as.origin }));
    expect(e.message).toMatch(/token_endpoint http:\/\/tokens\.example\.com is not https/);
  });

  it('endpoint_on_other_origin_refused: an authorization endpoint on another origin than the issuer', async () => {
    as.metadata.authorization_endpoint = `${hostile.origin}/authorize`;
    const e = await refused(target({ authorizationServer: as.origin }));
    expect(e.message).toContain(`authorization_endpoint is on ${hostile.origin}`);
    expect(e.message).toContain('oauth.allowOrigins');
  });

  it('missing_pkce_refused: no S256 in code_challenge_methods_supported (MCP authorization: must not go on)', async () => {
    as.metadata.code_challenge_methods_supported = undefined;
    const e = await refused(target({ authorizationServer: as.origin }));
    expect(e.message).toMatch(/does not advertise PKCE with S256/);
    as.metadata.code_challenge_methods_supported = ['plain'];
    expect((await refused(target({ authorizationServer: as.origin }))).message).toMatch(/does not advertise PKCE with S256/);
  });

  it('pinned_issuer_enforced: resource metadata naming another authorization server than the registry\'s', async () => {
    const url = hostileResource({ resource: `${hostile.origin}/mcp`, authorization_servers: ['https://auth.attacker.example'] });
    const e = await refused(target({ authorizationServer: as.origin }, url));
    expect(e.message).toMatch(/names authorization server https:\/\/auth\.attacker\.example, not/);
  });
});

describe('hostile protected resource metadata', () => {
  it('resource_metadata_other_origin_refused: a 401 naming metadata on another origin, unless that origin is allowed', async () => {
    hostile.routes.set('/mcp', { status: 401, headers: { 'www-authenticate': `Bearer resource_metadata="${mcp.origin}/.well-known/oauth-protected-resource/mcp"` }, body: '{}' });
    const e = await refused(target({ authorizationServer: as.origin }, `${hostile.origin}/mcp`));
    expect(e.message).toContain(`the resource metadata URL its 401 names is on ${mcp.origin}`);
  });

  it('resource_for_other_server_refused: metadata describing another resource (RFC 9728 §3.3)', async () => {
    const url = hostileResource({ resource: 'https://mail.example.com/mcp', authorization_servers: [as.origin] });
    const e = await refused(target({ authorizationServer: as.origin }, url));
    expect(e.message).toMatch(/it describes https:\/\/mail\.example\.com, not/);
  });

  it('garbage_json_refused: metadata that is not JSON', async () => {
    const url = hostileResource('<html>{not json');
    const e = await refused(target({ authorizationServer: as.origin }, url));
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toMatch(/is not JSON/);
    hostile.routes.set('/.well-known/oauth-protected-resource/mcp', { body: '[1,2,3]' });
    expect((await refused(target({ authorizationServer: as.origin }, url))).message).toMatch(/not a JSON object/);
  });

  it('huge_metadata_refused: a body past 256 KiB is cut off as it arrives, not buffered', async () => {
    const url = hostileResource({ resource: `${hostile.origin}/mcp`, authorization_servers: [as.origin], padding: 'x'.repeat(300 * 1024) });
    const e = await refused(target({ authorizationServer: as.origin }, url));
    expect(e.code).toBe('OAUTH_REFUSED');
    expect(e.message).toMatch(/more than 256 KiB/);
  });

  it('no_metadata_and_no_pin: a server with no resource metadata and no oauth.authorizationServer is refused with the fix', async () => {
    hostile.routes.set('/mcp', { status: 401, body: '{}' });
    const e = await refused(target({}, `${hostile.origin}/mcp`));
    expect(e.message).toMatch(/names no authorization server .*set oauth\.authorizationServer in \/registry\/remote\.yaml/);
  });
});

/**
 * A real OAuth 2.1 authorization server and a remote MCP server that requires
 * its tokens, both on loopback, for the upstream OAuth tests.
 *
 * The authorization server is the MCP SDK's own (mcpAuthRouter: metadata,
 * authorize with PKCE S256 and registered redirect URIs, token with the
 * verifier checked, dynamic registration, revocation) with an in-memory
 * provider that issues, rotates and revokes tokens and counts what it is
 * asked. The SDK has no device grant (RFC 8628): its two endpoints are added
 * here, on the same token endpoint. The MCP server is the SDK's Streamable
 * HTTP server behind its requireBearerAuth, whose 401 names the protected
 * resource metadata; its `whoami` tool tells which user's token a call carried.
 * With `era: '2026-07-28'` the MCP server is the SDK v2's instead, serving
 * the 2026-07-28 revision only (no 2025-11-25 fallback), behind the same
 * Bearer check.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createOAuthMetadata, mcpAuthMetadataRouter, mcpAuthRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidGrantError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { AuthorizationParams, OAuthServerProvider } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { OAuthRegisteredClientsStore } from '@modelcontextprotocol/sdk/server/auth/clients.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { OAuthClientInformationFull, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { z } from 'zod';
import { createMcpHandler, McpServer as ModernMcpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface Grant {
  user: string;
  clientId: string;
  scopes: string[];
  resource: string | undefined;
}
interface Access extends Grant {
  expiresAt: number;
}

class Clients implements OAuthRegisteredClientsStore {
  readonly all = new Map<string, OAuthClientInformationFull>();
  registrations = 0;
  async getClient(id: string) {
    return this.all.get(id);
  }
  async registerClient(c: OAuthClientInformationFull) {
    this.registrations++;
    this.all.set(c.client_id, c);
    return c;
  }
}

/** The provider: users sign in as `nextUser`; every counter is public for the tests. */
export class TestProvider implements OAuthServerProvider {
  readonly clientsStore = new Clients();
  /** Who signs in at the next authorization or device approval. */
  nextUser = 'alice';
  /** Access token lifetime in seconds. */
  accessTtlS = 3600;
  /** Rotate refresh tokens on every refresh (OAuth 2.1 §4.3.1). */
  rotate = true;
  refreshRequests = 0;
  codeExchanges = 0;
  /** What the token endpoint was sent as `resource` each time. */
  resources: Array<string | undefined> = [];
  private readonly codes = new Map<string, { client: string; params: AuthorizationParams; user: string }>();
  readonly access = new Map<string, Access>();
  readonly refresh = new Map<string, Grant>();

  async authorize(client: OAuthClientInformationFull, params: AuthorizationParams, res: Response): Promise<void> {
    const code = randomUUID();
    this.codes.set(code, { client: client.client_id, params, user: this.nextUser });
    const to = new URL(params.redirectUri);
    to.searchParams.set('code', code);
    if (params.state !== undefined) to.searchParams.set('state', params.state);
    res.redirect(302, to.href);
  }

  async challengeForAuthorizationCode(_client: OAuthClientInformationFull, code: string): Promise<string> {
    const c = this.codes.get(code);
    if (!c) throw new InvalidGrantError('unknown authorization code');
    return c.params.codeChallenge;
  }

  async exchangeAuthorizationCode(client: OAuthClientInformationFull, code: string, _verifier?: string, redirectUri?: string, resource?: URL): Promise<OAuthTokens> {
    const c = this.codes.get(code);
    this.codes.delete(code);
    if (!c || c.client !== client.client_id) throw new InvalidGrantError('authorization code not issued to this client');
    if (redirectUri !== undefined && redirectUri !== c.params.redirectUri) throw new InvalidGrantError('redirect_uri differs from the authorization request');
    this.codeExchanges++;
    this.resources.push(resource?.href);
    return this.issue({ user: c.user, clientId: client.client_id, scopes: c.params.scopes ?? [], resource: resource?.href ?? c.params.resource?.href });
  }

  async exchangeRefreshToken(client: OAuthClientInformationFull, token: string, _scopes?: string[], resource?: URL): Promise<OAuthTokens> {
    this.refreshRequests++;
    this.resources.push(resource?.href);
    const g = this.refresh.get(token);
    if (!g || g.clientId !== client.client_id) throw new InvalidGrantError('refresh token is invalid, revoked or rotated');
    if (this.rotate) this.refresh.delete(token);
    const t = this.issue(g, !this.rotate);
    return this.rotate ? t : { ...t, refresh_token: token };
  }

  issue(g: Grant, keepRefresh = false): OAuthTokens {
    const access = `at-${g.user}-${randomUUID()}`;
    this.access.set(access, { ...g, expiresAt: Date.now() + this.accessTtlS * 1000 });
    const refresh = `rt-${g.user}-${randomUUID()}`;
    if (!keepRefresh) this.refresh.set(refresh, g);
    return { access_token: access, token_type: 'bearer', expires_in: this.accessTtlS, refresh_token: refresh, scope: g.scopes.join(' ') };
  }

  async verifyAccessToken(token: string): Promise<AuthInfo> {
    const a = this.access.get(token);
    if (!a || a.expiresAt < Date.now()) throw new InvalidTokenError('unknown or expired access token');
    return { token, clientId: a.clientId, scopes: a.scopes, expiresAt: Math.floor(a.expiresAt / 1000), ...(a.resource ? { resource: new URL(a.resource) } : {}), extra: { user: a.user } };
  }

  /** Revokes every refresh token of `user` (and, with `access`, its access tokens). */
  revokeUser(user: string, access = false): void {
    for (const [t, g] of this.refresh) if (g.user === user) this.refresh.delete(t);
    if (access) for (const [t, a] of this.access) if (a.user === user) this.access.delete(t);
  }

  // RFC 8628, which the SDK's router does not have.
  private readonly devices = new Map<string, { userCode: string; client: string; scopes: string[]; resource: string | undefined; user?: string }>();
  deviceAuthorization(clientId: string, scope: string | undefined, resource: string | undefined) {
    const deviceCode = randomUUID();
    const userCode = randomUUID().slice(0, 8).toUpperCase();
    this.devices.set(deviceCode, { userCode, client: clientId, scopes: scope ? scope.split(' ') : [], resource });
    return { device_code: deviceCode, user_code: userCode, expires_in: 600, interval: 1 };
  }
  /** The user types the code on another device and signs in as `nextUser`. */
  approveDevice(userCode: string): void {
    for (const d of this.devices.values()) if (d.userCode === userCode) d.user = this.nextUser;
  }
  deviceToken(clientId: string, deviceCode: string): { status: number; body: object } {
    const d = this.devices.get(deviceCode);
    if (!d || d.client !== clientId) return { status: 400, body: { error: 'invalid_grant' } };
    if (d.user === undefined) return { status: 400, body: { error: 'authorization_pending' } };
    this.devices.delete(deviceCode);
    this.resources.push(d.resource);
    return { status: 200, body: this.issue({ user: d.user, clientId, scopes: d.scopes, resource: d.resource }) };
  }
}

export interface Listening {
  url: string;
  origin: string;
  close(): Promise<void>;
}

function listen(app: express.Express): Promise<{ server: Server; origin: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
}

export interface AuthServer extends Listening {
  provider: TestProvider;
  /** Metadata fields replaced or added (undefined removes one): for hostile-metadata tests. */
  metadata: Record<string, unknown>;
}

/** The authorization server; its issuer is its origin. */
export async function startAuthServer(opts: { scopes?: string[] } = {}): Promise<AuthServer> {
  const provider = new TestProvider();
  const app = express();
  const overrides: Record<string, unknown> = {};
  let issuer = new URL('http://127.0.0.1/');
  // The metadata, with the device endpoint added (and whatever a test overrides).
  app.get('/.well-known/oauth-authorization-server', (_req, res) => {
    const m: Record<string, unknown> = { ...createOAuthMetadata({ provider, issuerUrl: issuer, ...(opts.scopes ? { scopesSupported: opts.scopes } : {}) }), device_authorization_endpoint: new URL('/device_authorization', issuer).href };
    for (const [k, v] of Object.entries(overrides)) {
      if (v === undefined) delete m[k];
      else m[k] = v;
    }
    res.json(m);
  });
  app.post('/device_authorization', express.urlencoded({ extended: false }), (req: Request, res: Response) => {
    const body = req.body as Record<string, string>;
    if (!body.client_id || !provider.clientsStore.all.has(body.client_id)) return void res.status(401).json({ error: 'invalid_client' });
    res.json({ ...provider.deviceAuthorization(body.client_id, body.scope, body.resource), verification_uri: new URL('/device', issuer).href });
  });
  app.post('/token', express.urlencoded({ extended: false }), (req: Request, res: Response, next) => {
    const body = req.body as Record<string, string>;
    if (body.grant_type !== DEVICE_GRANT) return next();
    const r = provider.deviceToken(body.client_id ?? '', body.device_code ?? '');
    res.status(r.status).json(r.body);
  });
  const { server, origin } = await listen(app);
  issuer = new URL(origin);
  app.use(mcpAuthRouter({ provider, issuerUrl: issuer, ...(opts.scopes ? { scopesSupported: opts.scopes } : {}), tokenOptions: { rateLimit: false }, clientRegistrationOptions: { rateLimit: false }, authorizationOptions: { rateLimit: false }, revocationOptions: { rateLimit: false } }));
  return { url: origin, origin, provider, metadata: overrides, close: closer(server) };
}

export interface McpResource extends Listening {
  /** Authorization headers the server saw, in order. */
  seen: string[];
  /** Every tools/call's user, in order. */
  calls: string[];
}

/** The remote MCP server at /mcp: Bearer tokens of `as` only, for its own resource. */
export async function startMcpResource(as: AuthServer, opts: { scopes?: string[]; era?: '2025-11-25' | '2026-07-28' } = {}): Promise<McpResource> {
  const app = express();
  const seen: string[] = [];
  const calls: string[] = [];
  let mcpUrl = new URL('http://127.0.0.1/mcp');
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const server = await listen(app);
  mcpUrl = new URL('/mcp', server.origin);
  const oauthMetadata = createOAuthMetadata({ provider: as.provider, issuerUrl: new URL(as.origin) });
  app.use(mcpAuthMetadataRouter({ oauthMetadata, resourceServerUrl: mcpUrl, ...(opts.scopes ? { scopesSupported: opts.scopes } : {}) }));
  app.use('/mcp', (req, _res, next) => {
    seen.push(req.headers.authorization ?? '');
    next();
  });
  app.use(
    '/mcp',
    requireBearerAuth({ verifier: as.provider, resourceMetadataUrl: `${server.origin}/.well-known/oauth-protected-resource/mcp`, expectedResource: mcpUrl }),
  );
  app.use(express.json());
  if (opts.era === '2026-07-28') {
    // A modern-only server: a 2025-11-25 client (an initialize) is refused, so only a 2026-07-28 client gets anywhere.
    const userOf = (auth: { extra?: Record<string, unknown> } | undefined) => String((auth?.extra as { user?: string } | undefined)?.user);
    const handler = createMcpHandler(
      () => {
        const mcp = new ModernMcpServer({ name: 'oauth-resource-2026', version: '1.0.0' });
        mcp.registerTool('whoami', { description: 'The user whose token this call carried', inputSchema: z.object({}) }, async (_args, ctx) => {
          const user = userOf(ctx.http?.authInfo);
          calls.push(user);
          return { content: [{ type: 'text', text: user }] };
        });
        mcp.registerTool('echo', { description: 'Echoes text', inputSchema: z.object({ text: z.string() }) }, async ({ text }, ctx) => {
          calls.push(userOf(ctx.http?.authInfo));
          return { content: [{ type: 'text', text }] };
        });
        return mcp;
      },
      { legacy: 'reject' },
    );
    const node = toNodeHandler(handler);
    app.all('/mcp', (req: Request, res: Response) => void node(req as never, res as never, req.body));
    return { url: mcpUrl.href, origin: server.origin, seen, calls, close: closer(server.server) };
  }
  app.all('/mcp', async (req: Request, res: Response) => {
    const sid = req.headers['mcp-session-id'];
    let t = typeof sid === 'string' ? transports.get(sid) : undefined;
    if (!t) {
      if (sid !== undefined) return void res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'unknown session' }, id: null });
      t = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void transports.set(id, t as StreamableHTTPServerTransport) });
      const mcp = new McpServer({ name: 'oauth-resource', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'The user whose token this call carried', inputSchema: {} }, async (_args, extra) => {
        const user = String((extra.authInfo?.extra as { user?: string } | undefined)?.user);
        calls.push(user);
        return { content: [{ type: 'text', text: user }] };
      });
      // A hostile (or careless) upstream that hands the token it received back in its result.
      mcp.registerTool('leak', { description: 'Returns the bearer token it was called with', inputSchema: {} }, async (_args, extra) => ({
        content: [{ type: 'text', text: `you sent me ${extra.authInfo?.token ?? ''}` }],
      }));
      mcp.registerTool('echo', { description: 'Echoes text', inputSchema: { text: z.string() } }, async ({ text }, extra) => {
        calls.push(String((extra.authInfo?.extra as { user?: string } | undefined)?.user));
        return { content: [{ type: 'text', text }] };
      });
      await mcp.connect(t);
    }
    await t.handleRequest(req as never, res as never, req.body);
  });
  return { url: mcpUrl.href, origin: server.origin, seen, calls, close: closer(server.server) };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { Hono, type Context } from 'hono';
import { toHttpError, toJsonRpcError } from '../errors.js';
import { readNodeBody } from '../upstreams/body-limit.js';
import type { Logger } from '../log.js';
import { bearerChallenge, type Authenticate } from './auth.js';
import { checkHost, checkOrigin } from './guards.js';
import { cancelOnHangUp } from './hang-up.js';
import { parseJsonRpcBody } from './json-body.js';
import { admitAgent } from './listen.js';
import { classifyEra, UNSUPPORTED_PROTOCOL_VERSION } from './era.js';
import { serveStateless } from './stateless-http.js';
import { LEGACY_PROTOCOL_VERSION } from '../config/protocol.js';
import type { Identity, SessionManager } from './mcp-sessions.js';
import { jsonRpcError } from './rpc-error.js';

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface AppOptions {
  sessions: SessionManager;
  authenticate: Authenticate;
  hosts: ReadonlySet<string>;
  origins: ReadonlySet<string>;
  maxBodyBytes?: number;
  logger: Logger;
  /** Whether to send RFC 9728 metadata (TCP listeners with token auth). */
  protectedResource?: boolean;
  /** Model calls on /llm/<provider>/… (src/inference/); absent: no such route. */
  llm?: ModelRoutes;
}

export interface ModelRoutes {
  /** With `raw` (the Node request and response), `undefined` means the answer was written there already. */
  handle(req: Request, caller: Identity, provider: string, path: string, raw?: { incoming: IncomingMessage; outgoing: ServerResponse }): Promise<Response | undefined>;
}

type Env = { Variables: { identity: Identity } };

/**
 * A request body of at most `max` bytes, or undefined past it. Under the Node
 * server it is read from the Node request itself (a fifth of a millisecond less
 * per call than through the Web Request's stream).
 */
async function requestBody(c: Context<Env>, max: number): Promise<Uint8Array | undefined> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming) {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      await readNodeBody(incoming, (chunk) => {
        size += chunk.byteLength;
        if (size > max) throw new Error('too large');
        chunks.push(chunk as Buffer);
      });
    } catch (e) {
      if (size > max) return undefined;
      throw e;
    }
    return Buffer.concat(chunks, size);
  }
  // An in-process fetch (no Node server: tests, never a listener): the whole body, then the cap.
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  return bytes.byteLength > max ? undefined : bytes;
}

function isJsonContentType(ct: string | undefined): boolean {
  return ct !== undefined && /^application\/json\s*(;|$)/i.test(ct.trim());
}

/** One sandbox, or one token agent: the unit that connection and in-flight limits count. */
function agentKey(identity: Identity): string {
  return identity.via === 'sandbox' ? `sandbox:${identity.sandbox ?? identity.agent}` : `token:${identity.agent}`;
}

export function createApp(opts: AppOptions): Hono<Env> {
  const app = new Hono<Env>();
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  // DNS-rebinding protection on every route.
  app.use('*', async (c, next) => {
    const host = checkHost(c.req.header('host'), opts.hosts);
    if (!host.ok) return jsonRpcError(host.status, -32000, host.message);
    const origin = checkOrigin(c.req.header('origin'), opts.origins);
    if (!origin.ok) return jsonRpcError(origin.status, -32000, origin.message);
    return next();
  });

  const resourceMetadata = (c: Context) => {
    const base = `http://${c.req.header('host') ?? 'localhost'}`;
    return c.json({
      resource: `${base}/mcp`,
      authorization_servers: [],
      bearer_methods_supported: ['header'],
      resource_name: 'Gatehouse MCP gateway',
      resource_documentation: 'https://github.com/gatehouse/gatehouse#agent-tokens',
    });
  };
  if (opts.protectedResource) {
    // RFC 9728 §3: at the well-known path, and with the resource's path appended.
    app.get('/.well-known/oauth-protected-resource', resourceMetadata);
    app.get('/.well-known/oauth-protected-resource/mcp', resourceMetadata);
  }
  app.get('/healthz', (c) => c.json({ ok: true }));

  app.use('/mcp', async (c, next) => {
    const auth = await opts.authenticate(c.req.raw);
    if (!auth.ok) return jsonRpcError(401, -32001, `Unauthorized: ${auth.description}`, { 'www-authenticate': bearerChallenge(auth, c.req.header('host')) });
    // Connections and requests in progress per agent (one sandbox, or one token agent): one must not take every slot.
    const refused = admitAgent(c.req.raw, agentKey(auth.identity));
    if (refused) return jsonRpcError(refused.status, -32000, refused.message, { 'retry-after': '1', connection: 'close' });
    c.set('identity', auth.identity);
    return next();
  });

  app.post('/mcp', async (c) => {
    const tooLarge = () => jsonRpcError(413, -32000, `Payload Too Large: request body exceeds ${maxBody} bytes`, { connection: 'close' });
    const declared = Number(c.req.header('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBody) return tooLarge();
    if (!isJsonContentType(c.req.header('content-type'))) {
      return jsonRpcError(415, -32000, 'Unsupported Media Type: Content-Type must be application/json');
    }
    // The rest of an oversized body is never read; the connection closes after the 413, or a keep-alive client's next request stalls behind it.
    const bytes = await requestBody(c, maxBody);
    if (bytes === undefined) return tooLarge();
    const parsed = parseJsonRpcBody(bytes);
    if (!parsed.ok) return jsonRpcError(parsed.status, parsed.code, parsed.message);
    const body = parsed.body;
    const identity = c.get('identity');
    // Which protocol era, from the body and its mirrored headers (MCP 2026-07-28, basic/versioning): checked before anything else.
    const era = classifyEra((name) => c.req.header(name), body);
    if (era.era === 'reject') return jsonRpcError(era.status, era.code, era.message, {}, { data: era.data, id: era.id });
    if (era.era === 'modern') {
      if (!opts.sessions.stateless) return jsonRpcError(400, UNSUPPORTED_PROTOCOL_VERSION, 'Unsupported protocol version: this listener serves 2025-11-25 sessions only', {}, { data: { supported: [LEGACY_PROTOCOL_VERSION], requested: era.version }, id: era.kind === 'request' ? era.message.id : null });
      const caller = { agent: identity.agent, principal: agentKey(identity), ...(identity.sandbox !== undefined ? { sandbox: identity.sandbox } : {}) };
      const { outgoing } = (c.env ?? {}) as { outgoing?: ServerResponse };
      const answer = await serveStateless(era, caller, opts.sessions.stateless, { outgoing, signal: c.req.raw.signal, header: (name) => c.req.header(name) }, opts.logger);
      return answer ?? RESPONSE_ALREADY_SENT;
    }
    const sid = c.req.header('mcp-session-id');
    if (sid === undefined) {
      if (!isInitializeRequest(body)) {
        return jsonRpcError(400, -32000, 'Bad Request: Mcp-Session-Id header is required (send initialize first to open a session)');
      }
      // Admission (per-agent quota, global cap) and the new session, in one place.
      return opts.sessions.initialize(identity, c.req.raw, body);
    }
    const session = opts.sessions.get(sid, identity);
    if (!session) return jsonRpcError(404, -32001, 'Session not found');
    const res = await session.transport.handleRequest(c.req.raw, { parsedBody: body });
    // A client gone before its result has cancelled its calls (a pending approval is withdrawn, not run later).
    cancelOnHangUp(c.req.raw.signal, session.transport, body);
    return res;
  });

  const existing = async (c: Context<Env>) => {
    const sid = c.req.header('mcp-session-id');
    if (sid === undefined) return jsonRpcError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    const session = opts.sessions.get(sid, c.get('identity'));
    if (!session) return jsonRpcError(404, -32001, 'Session not found');
    return session.transport.handleRequest(c.req.raw);
  };
  app.get('/mcp', existing);
  app.delete('/mcp', existing);
  app.all('/mcp', () => jsonRpcError(405, -32000, 'Method Not Allowed', { allow: 'GET, POST, DELETE' }));

  if (opts.llm) {
    const llm = opts.llm;
    app.all('/llm/:provider/*', async (c) => {
      // Agents outside the sandbox present their agent token as their SDK sends a key: Authorization or x-api-key.
      let auth = await opts.authenticate(c.req.raw);
      const key = c.req.header('x-api-key');
      if (!auth.ok && key !== undefined) auth = await opts.authenticate(c.req.raw, key);
      if (!auth.ok) {
        const body = { type: 'error', error: { type: 'authentication_error', message: `Gatehouse: ${auth.description} (send the agent token as the API key)`, code: 'gatehouse_unauthorized' } };
        return c.json(body, 401, { 'www-authenticate': 'Bearer realm="gatehouse"' });
      }
      const refused = admitAgent(c.req.raw, agentKey(auth.identity));
      if (refused) return c.json({ type: 'error', error: { type: 'rate_limit_error', message: `Gatehouse: ${refused.message}` } }, refused.status as 429, { 'retry-after': '1', connection: 'close' });
      const provider = c.req.param('provider');
      const path = new URL(c.req.url).pathname.slice(`/llm/${encodeURIComponent(provider)}`.length) || '/';
      // Under the Node server the body is read from, and a stream written to, the Node objects themselves.
      const { incoming, outgoing } = (c.env ?? {}) as { incoming?: IncomingMessage; outgoing?: ServerResponse };
      const answer = await llm.handle(c.req.raw, auth.identity, provider, path, incoming && outgoing ? { incoming, outgoing } : undefined);
      return answer ?? RESPONSE_ALREADY_SENT;
    });
  }

  app.notFound(() => jsonRpcError(404, -32601, 'Not Found: the MCP endpoint is /mcp'));
  app.onError((err) => {
    opts.logger.error({ err: err.message }, 'request failed');
    const j = toJsonRpcError(err);
    return jsonRpcError(toHttpError(err).status, j.code, j.message);
  });
  return app;
}

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolResultSchema,
  ErrorCode,
  LoggingMessageNotificationSchema,
  McpError,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type Progress,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { Agent } from 'undici';
import { VERSION } from '../config/paths.js';
import { GatehouseError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { connectorSecrets, type ToolConnector } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { classifyUpstreamError } from './errors.js';
import { builtinTransport } from '../connectors/index.js';
import { callContext, InFlightCalls, routeInputRequest, routeMessage, type CallOrigin, type CallScope, type ServerMessageHandler } from './call-context.js';
import { Exchange, type BodyLimit } from './exchange.js';
import type { TraceContext } from '../telemetry/traces.js';
import { httpDispatcher, httpTransport } from './http-transport.js';
import { limitsOf, type UpstreamLimits } from './limits.js';
import { nonFinitePath } from './non-finite.js';
import { RelistScheduler } from './relist.js';
import { clientCapabilities, deliverResponsesInOrder } from './shims.js';
import { stdioTransport, type ConfineStdio } from './stdio-transport.js';
import { listAllTools, ToolPageSchema } from './tool-list.js';
import { OAuthLogins } from './oauth/logins.js';
import { SdkError, SdkErrorCode, type McpSubscription, type Transport as ModernTransport } from '@modelcontextprotocol/client';
import type { z } from 'zod';
import { alreadyStarted, bindScope, isLegacyVerdict, modernCallMeta, modernClient, modernHttpTransport, probeStdio, STDIO_PROBE_MS, type EraVerdict, type ModernClient } from './modern-client.js';
import { MODERN_PROTOCOL_VERSION } from '../config/protocol.js';
import { paramDeclarations, paramHeaders } from './param-headers.js';

export { clientCapabilities } from './shims.js';
export { MAX_HTTP_CONNECTIONS } from './http-transport.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;
/** A "2025-11-25 only" verdict is asked again after this (an upgraded server still answers initialize: nothing else would tell). */
const LEGACY_VERDICT_MS = 60 * 60_000;

/** The SDK v1 client (2025-11-25) or v2 client (2026-07-28) of an upstream. */
type AnyClient = Client | ModernClient;
type SendOptions = { signal?: AbortSignal; timeout?: number; onprogress?: (p: Progress) => void; resetTimeoutOnProgress?: boolean; maxTotalTimeout?: number; headers?: Record<string, string> };

/** One request on either client: both take a request, a result schema and options. */
function requestOn<T>(client: AnyClient, req: { method: string; params: Record<string, unknown> }, schema: z.ZodType<T>, opts: SendOptions): Promise<T> {
  return (client as unknown as { request(r: unknown, s: unknown, o: unknown): Promise<T> }).request(req, schema, opts);
}

export type UpstreamStatus =
  | { state: 'starting' }
  | { state: 'ready' }
  | { state: 'not-ready'; reason: string; fix: string }
  | { state: 'failed'; reason: string; retryInMs: number }
  | { state: 'stopped' };

export interface UpstreamOptions {
  connector: ToolConnector;
  /** Directory that relative stdio paths resolve against (the registry's parent). */
  baseDir: string;
  secrets: SecretResolver;
  logger: Logger;
  /** Called after the upstream's tool list changed (or first became known). */
  onToolsChanged: () => void;
  /** Initial restart backoff; tests shorten it. */
  backoffMs?: number;
  /** Where the upstream's sampling/elicitation requests and log messages go; without it they are refused or dropped. */
  serverMessages?: ServerMessageHandler;
  /** Runs a stdio server under the sandbox launcher; without it only `sandbox: off` stdio connectors start. */
  confine?: ConfineStdio;
}

export interface CallOptions {
  signal: AbortSignal;
  onprogress?: (p: Progress) => void;
  /** The agent call this is, so the upstream's requests and log messages during it can reach that agent. */
  origin?: CallOrigin;
  /**
   * The call's W3C trace context, sent upstream in `params._meta` (both eras)
   * and, to an http connector, as HTTP headers: the gateway's upstream span
   * when tracing is on, else the agent's own context passed through.
   */
  trace?: TraceContext;
}

/**
 * One upstream MCP server, shared by every session: its lifecycle (start,
 * restart with backoff, stop), its tool list, and forwarding of calls.
 */
export class Upstream {
  readonly connector: ToolConnector;
  private readonly opts: UpstreamOptions;
  private client: AnyClient | undefined;
  /** Which revision the upstream speaks, once asked (modern-client.ts); forgotten when a kept "modern" fails. */
  private verdict: { v: EraVerdict; at: number } | undefined;
  /** The 2026-07-28 client's subscriptions/listen stream (its tool list changes). */
  private subscription: McpSubscription | undefined;
  /** The revision the running client speaks (initialize's answer, or 2026-07-28). */
  private _protocol: string | undefined;
  private dispatcher: Agent | undefined;
  private _status: UpstreamStatus = { state: 'starting' };
  private _tools: Tool[] = [];
  private stopping = false;
  private backoff: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private generation = 0;
  private lastNotReady: string | undefined;
  private readonly unwatchSecrets: () => void;
  /** Agent calls in flight here, for routing the upstream's own requests (see call-context.ts). */
  private readonly inFlight = new InFlightCalls();
  private readonly limits: UpstreamLimits;
  /** Restarts scheduled after a failed start, an exit or a closed connection (metrics). */
  restarts = 0;
  private readonly relist: RelistScheduler;
  /** The clients whose connection closed (the SDK's "Connection closed" and an upstream's -32000 share a code). */
  private readonly closedClients = new WeakSet<AnyClient>();
  /** `oauth:` connectors: their logins (src/upstreams/oauth/). */
  private readonly oauth: OAuthLogins | undefined;
  /** `oauth: { per: agent }`: whose login lists the tools (undefined: the connector's own). */
  private listingAgent: string | undefined;
  /** `oauth: { per: agent }`: each calling agent's own client (an MCP session for 2025-11-25), as itself upstream. */
  private readonly agentClients = new Map<string, Promise<AnyClient>>();

  constructor(opts: UpstreamOptions) {
    this.opts = opts;
    this.connector = opts.connector;
    this.backoff = opts.backoffMs ?? 250;
    this.limits = limitsOf(opts.connector);
    this.relist = new RelistScheduler(this.limits.relistsPerMinute, () => this.listOnce(opts.logger.child({ connector: opts.connector.name })));
    const c = opts.connector;
    this.oauth = c.kind === 'http' && c.oauth !== undefined ? new OAuthLogins({ ...c, oauth: c.oauth }, opts.secrets, opts.logger.child({ connector: c.name })) : undefined;
    // [secrets] A rotated secret restarts a stdio child (its env is fixed at spawn) and starts a not-ready connector; a new login likewise.
    this.unwatchSecrets = opts.secrets.watch?.([...connectorSecrets(c), ...(this.oauth?.watchNames() ?? [])], () => void this.onSecretsChanged()) ?? (() => undefined);
  }

  private async onSecretsChanged(): Promise<void> {
    if (this.stopping) return;
    this.oauth?.invalidate();
    const st = this._status.state;
    if (st === 'not-ready') return this.start();
    // http and built-in connectors render per request: nothing to do.
    if (st === 'ready' && this.connector.kind === 'stdio') {
      this.opts.logger.child({ connector: this.connector.name }).info('a secret in the environment changed; restarting the upstream');
      return this.restart();
    }
  }

  /** Stops the running upstream (if any) and starts it again. */
  async restart(): Promise<void> {
    if (this.stopping) return;
    clearTimeout(this.restartTimer);
    const old = this.client;
    this.client = undefined;
    this.generation++;
    await old?.close().catch(() => undefined);
    await this.closeAgentClients();
    await this.start();
  }

  get status(): UpstreamStatus {
    return this._status;
  }
  /** The MCP revision spoken with the upstream while it is ready (README, "Protocol eras"). */
  get protocol(): string | undefined {
    return this._status.state === 'ready' ? this._protocol : undefined;
  }
  /**
   * The tools to expose. While a crashed upstream restarts, its last known
   * tools stay listed, so a call gets "not ready, retrying" rather than
   * "unknown tool"; a connector that is not ready (missing secret) lists none.
   */
  get tools(): readonly Tool[] {
    const st = this._status.state;
    return st === 'ready' || st === 'failed' || st === 'starting' ? this._tools : [];
  }
  get callTimeoutMs(): number {
    return this.connector.timeouts.call ?? DEFAULT_CALL_TIMEOUT_MS;
  }
  private get connectTimeoutMs(): number {
    return this.connector.timeouts.connect ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** Starts (or restarts) the upstream. Never throws: failures become the status. */
  async start(): Promise<void> {
    if (this.stopping) return;
    const gen = ++this.generation;
    this._status = { state: 'starting' };
    const log = this.opts.logger.child({ connector: this.connector.name });
    let client: AnyClient | undefined;
    try {
      if (this.oauth) this.listingAgent = await this.oauth.listingAgent();
      client = await this.connectClient(gen, log);
      if (this.stopping || gen !== this.generation) {
        await client.close();
        return;
      }
      this.client = client;
      const live = client;
      client.onclose = () => this.onClosed(gen, live);
      this.relist.listed();
      this._tools = await this.listAllTools(client);
      if (this.isModern(client)) this.listen(client, gen, log);
      this._status = { state: 'ready' };
      this.startedAt = Date.now();
      log.info({ tools: this._tools.length, protocol: this.isModern(client) ? MODERN_PROTOCOL_VERSION : 'initialize' }, 'upstream ready');
      this.opts.onToolsChanged();
    } catch (e) {
      if (client) await client.close().catch(() => undefined);
      // A kept "modern" was adopted without asking: ask again next time.
      if (this.verdict?.v.kind === 'modern') this.verdict = undefined;
      if (e instanceof GatehouseError && (e.code === 'SECRET_MISSING' || e.code === 'SECRET_UNSAFE' || e.code === 'KEYCHAIN_UNAVAILABLE' || e.code === 'OAUTH_LOGIN_REQUIRED')) {
        // [secrets] Not ready until the secret, the login (or the keychain) changes: the resolver's watch starts it again.
        const name = (e.details?.secret as string | undefined) ?? 'NAME';
        const fix =
          e.code === 'KEYCHAIN_UNAVAILABLE'
            ? 'start or unlock the OS keychain, then: gatehouse secret check'
            : e.code === 'OAUTH_LOGIN_REQUIRED'
              ? String(e.details?.fix ?? `gatehouse connector login ${this.connector.name}`)
              : `gatehouse secret set ${name}`;
        const prev = this._status;
        this._status = { state: 'not-ready', reason: e.message, fix };
        if (prev.state !== 'starting' || this.lastNotReady !== e.message) log.warn({ reason: e.message }, 'connector not ready');
        this.lastNotReady = e.message;
        this.opts.onToolsChanged();
        return;
      }
      this.scheduleRestart(gen, `${errorMessage(e)}`, log);
    }
  }

  private isModern(client: AnyClient | undefined): client is ModernClient {
    return client !== undefined && !(client instanceof Client);
  }

  /** The revision the registry entry asks for: built-in connectors are in-process 2025-11-25 servers. */
  private get wanted(): 'auto' | '2025-11-25' | '2026-07-28' {
    const c = this.connector;
    return c.kind === 'stdio' || c.kind === 'http' ? c.protocol : '2025-11-25';
  }

  private keptVerdict(): EraVerdict | undefined {
    const kept = this.verdict;
    if (kept && kept.v.kind === 'legacy' && Date.now() - kept.at > LEGACY_VERDICT_MS) this.verdict = undefined;
    return this.verdict?.v;
  }

  private notModern(): GatehouseError {
    const c = this.connector;
    return new GatehouseError('UPSTREAM_PROTOCOL', `connector "${c.name}" does not speak MCP ${MODERN_PROTOCOL_VERSION} (it asks for it with protocol: ${MODERN_PROTOCOL_VERSION} in ${c.file}); set protocol: auto to use what it speaks`);
  }

  /**
   * A connected client in the newest revision the upstream speaks (asked
   * once, then kept: modern-client.ts), or the one its entry pins.
   */
  private async connectClient(gen: number, log: Logger): Promise<AnyClient> {
    const c = this.connector;
    const wanted = this.wanted;
    const kept = this.keptVerdict();
    if (wanted === '2025-11-25' || (wanted === 'auto' && kept?.kind === 'legacy')) return this.connectLegacy(await this.makeTransport(log), gen, log);
    if (c.kind === 'stdio') {
      const transport = await this.makeTransport(log);
      if (kept?.kind === 'modern') return this.connectModern(transport, kept, gen, log);
      let probed;
      try {
        probed = await probeStdio(transport, Math.min(STDIO_PROBE_MS, this.connectTimeoutMs));
      } catch (e) {
        await transport.close().catch(() => undefined);
        throw e;
      }
      if (probed.verdict.kind === 'modern') return this.connectModern(alreadyStarted(transport), probed.verdict, gen, log);
      if (wanted === '2026-07-28') {
        await transport.close().catch(() => undefined);
        throw this.notModern();
      }
      this.verdict = { v: probed.verdict, at: Date.now() };
      log.info('upstream speaks MCP 2025-11-25 (initialize)');
      // A server that exits on a request before initialize (some do) is started again for it.
      return this.connectLegacy(probed.alive ? alreadyStarted(transport) : await this.makeTransport(log), gen, log);
    }
    if (c.kind !== 'http') return this.connectLegacy(await this.makeTransport(log), gen, log);
    try {
      return await this.connectModern(this.modernTransport(c), kept?.kind === 'modern' ? kept : undefined, gen, log);
    } catch (e) {
      // The gateway's own refusal inside the probe (no OAuth login, a login refused, a missing secret) is no
      // answer about the era: it is the failure (not ready, with its fix), and no "2025-11-25" verdict is kept.
      const own = gatehouseCause(e);
      if (own) throw own;
      if (!isLegacyVerdict(e)) throw e;
      if (wanted === '2026-07-28') throw this.notModern();
      this.verdict = { v: { kind: 'legacy' }, at: Date.now() };
      log.info('upstream speaks MCP 2025-11-25 (initialize)');
      return this.connectLegacy(await this.makeTransport(log), gen, log);
    }
  }

  /** The same fetch as the 2025-11-25 transport: secrets, origin, body caps and, for `oauth:` connectors, the Bearer token (refreshed on a 401). */
  private modernTransport(c: Extract<ToolConnector, { kind: 'http' }>): ModernTransport {
    return modernHttpTransport(c, this.httpOptions());
  }

  /** The connection pool of this connector (an http one), made on its first request. */
  private readonly pool = (): Agent => (this.dispatcher ??= httpDispatcher(this.connectTimeoutMs));

  /** What both eras' HTTP transports are built with (one dispatcher per connector). */
  private httpOptions(): Parameters<typeof httpTransport>[1] {
    return {
      owner: this,
      dispatcher: this.pool,
      secrets: this.opts.secrets,
      connectTimeoutMs: this.connectTimeoutMs,
      resultBytes: this.limits.resultBytes,
      ...(this.oauth ? { oauth: this.oauth.session(this.listingAgent) } : {}),
    };
  }

  /** The SDK v1 client over `transport`, connected with `initialize` (2025-11-25), as it always was. */
  private async connectLegacy(transport: Transport, gen: number, log: Logger): Promise<Client> {
    const client = new Client({ name: 'gatehouse', version: VERSION }, { capabilities: clientCapabilities(this.connector) });
    try {
      client.onerror = (e) => log.debug({ err: errorMessage(e) }, 'upstream transport error');
      this.handleServerMessages(client);
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        if (gen === this.generation) this.relist.changed();
      });
      // What initialize settled on (the client hands it to the transport, which keeps it for HTTP headers).
      const keep = transport.setProtocolVersion?.bind(transport);
      transport.setProtocolVersion = (v: string) => {
        this._protocol = v;
        keep?.(v);
      };
      await client.connect(transport, { timeout: this.connectTimeoutMs });
      deliverResponsesInOrder(transport);
      return client;
    } catch (e) {
      await client.close().catch(() => undefined);
      throw e;
    }
  }

  /** The SDK v2 client (2026-07-28): asks with server/discover, or adopts a kept answer without a round trip. */
  private async connectModern(transport: Transport | ModernTransport, kept: Extract<EraVerdict, { kind: 'modern' }> | undefined, gen: number, log: Logger): Promise<ModernClient> {
    const client = modernClient(this.connector, this.connectTimeoutMs);
    try {
      client.onerror = (e) => log.debug({ err: errorMessage(e) }, 'upstream transport error');
      this.handleModernMessages(client, gen);
      await client.connect(transport as ModernTransport, kept ? { prior: kept, timeout: this.connectTimeoutMs } : { timeout: this.connectTimeoutMs });
      deliverResponsesInOrder(transport as Transport);
      const discover = client.getDiscoverResult() ?? kept?.discover;
      if (discover) this.verdict = { v: { kind: 'modern', discover }, at: Date.now() };
      this._protocol = MODERN_PROTOCOL_VERSION;
      return client;
    } catch (e) {
      await client.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * A 2026-07-28 upstream's tool list changes come on a subscriptions/listen
   * stream (no unsolicited notifications): opened once ready, opened again
   * (and the list read again) when it drops.
   */
  private listen(client: ModernClient, gen: number, log: Logger, delayMs = 0): void {
    if (!client.getServerCapabilities()?.tools?.listChanged) return;
    const open = () => {
      if (this.stopping || gen !== this.generation || this.client !== client) return;
      client.listen({ toolsListChanged: true }).then(
        (sub) => {
          this.subscription = sub;
          void sub.closed.then((how) => {
            if (how !== 'remote' || this.stopping || gen !== this.generation || this.client !== client) return;
            log.debug('upstream subscription dropped; listening again');
            this.relist.changed();
            this.listen(client, gen, log, Math.min(Math.max(delayMs * 2, 250), MAX_BACKOFF_MS));
          });
        },
        (e: unknown) => log.debug({ err: errorMessage(e) }, 'upstream refused subscriptions/listen; its tool list is read at restarts only'),
      );
    };
    if (delayMs === 0) open();
    else setTimeout(open, delayMs).unref();
  }

  /** A 2026-07-28 upstream's input requests (inside its results) and log messages go the same way as a 2025 one's. */
  private handleModernMessages(client: ModernClient, gen: number): void {
    const handler = this.opts.serverMessages;
    const c = this.connector;
    const contextFollowsCall = c.kind === 'http';
    // The SDK's driver names each input request by its key in the upstream's inputRequests (ctx.mcpReq.id).
    const ask = (method: 'sampling/createMessage' | 'elicitation/create') => async (req: { params?: unknown }, ctx: { mcpReq: { signal: AbortSignal; id: string | number } }) => {
      if (!handler) throw new McpError(ErrorCode.MethodNotFound, 'Method not found');
      const route = routeInputRequest(this, this.inFlight);
      return handler.request({ connector: c, method, params: req.params, route, signal: ctx.mcpReq.signal, timeoutMs: this.callTimeoutMs, key: String(ctx.mcpReq.id) });
    };
    // Only what the registry allows is declared, so only that has a handler (an upstream asking for more fails the call).
    if (c.sampling === 'allow') client.setRequestHandler('sampling/createMessage', ask('sampling/createMessage') as never);
    if (c.elicitation === 'allow') client.setRequestHandler('elicitation/create', ask('elicitation/create') as never);
    client.setNotificationHandler('notifications/message', (n) => {
      handler?.log({ connector: c, params: n.params, route: routeMessage(this, contextFollowsCall, this.inFlight) });
    });
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      if (gen === this.generation) this.relist.changed();
    });
  }

  private async makeTransport(log: Logger): Promise<Transport> {
    const c = this.connector;
    if (c.kind === 'stdio') return stdioTransport(c, { baseDir: this.opts.baseDir, secrets: this.opts.secrets, log, ...(this.opts.confine ? { confine: this.opts.confine } : {}) });
    if (c.kind === 'http') return httpTransport(c, this.httpOptions());
    // Built-in REST connector (src/connectors/): an in-process MCP server on a linked in-memory pair.
    const secrets = this.opts.secrets;
    return builtinTransport(c, {
      render: (template, ctx) => secrets.render(template, ctx),
      logger: log,
      connectTimeoutMs: this.connectTimeoutMs,
      callTimeoutMs: this.callTimeoutMs,
    });
  }

  /**
   * `oauth: { per: agent }`: the calling agent's own client of the upstream,
   * opened with its login at its first call (OAUTH_LOGIN_REQUIRED naming
   * `connector login NAME --for AGENT` when it has none): an MCP session of
   * its own with a 2025-11-25 upstream; with a 2026-07-28 one, a client of
   * the same era (the connector's verdict adopted, no probe) whose every
   * request carries the agent's token.
   */
  private agentClient(agent: string): Promise<AnyClient> {
    const known = this.agentClients.get(agent);
    if (known) return known;
    const c = this.connector;
    const oauth = this.oauth;
    if (c.kind !== 'http' || !oauth) return Promise.reject(new GatehouseError('INTERNAL', `connector "${c.name}" has no per-agent logins`));
    const dispatcher = this.pool;
    const kept = this.verdict?.v;
    const modern = this.isModern(this.client) && kept?.kind === 'modern' ? kept : undefined;
    const opening = (async () => {
      // The login first: an agent without one gets the fix, not a connection attempt.
      await oauth.session(agent).token();
      const deps = { owner: this, dispatcher, secrets: this.opts.secrets, connectTimeoutMs: this.connectTimeoutMs, resultBytes: this.limits.resultBytes, oauth: oauth.session(agent) };
      let client: AnyClient;
      if (modern) {
        client = await this.connectModern(modernHttpTransport(c, deps), modern, this.generation, this.opts.logger.child({ connector: c.name, agent }));
      } else {
        const transport = httpTransport(c, deps);
        const legacy = new Client({ name: 'gatehouse', version: VERSION }, { capabilities: clientCapabilities(c) });
        this.handleServerMessages(legacy);
        await legacy.connect(transport, { timeout: this.connectTimeoutMs });
        deliverResponsesInOrder(transport);
        client = legacy;
      }
      client.onclose = () => {
        this.closedClients.add(client);
        if (this.agentClients.get(agent) === opening) this.agentClients.delete(agent);
      };
      return client;
    })();
    this.agentClients.set(agent, opening);
    opening.catch(() => {
      if (this.agentClients.get(agent) === opening) this.agentClients.delete(agent);
    });
    return opening;
  }

  private async closeAgentClients(): Promise<void> {
    const all = [...this.agentClients.values()];
    this.agentClients.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => undefined)));
  }

  /** The connector's own login is gone (refresh refused): not ready, with the command that fixes it; no restarts until the login changes. */
  private loginLost(e: GatehouseError): void {
    if (this.stopping || this._status.state === 'not-ready') return;
    this.generation++;
    const client = this.client;
    this.client = undefined;
    void client?.close().catch(() => undefined);
    this._status = { state: 'not-ready', reason: e.message, fix: String(e.details?.fix ?? `gatehouse connector login ${this.connector.name}`) };
    this.opts.logger.child({ connector: this.connector.name }).warn({ reason: e.message }, 'connector not ready');
    this.opts.onToolsChanged();
  }

  /**
   * Server-to-client traffic. A fallback handler (not setRequestHandler) so that a
   * request for a capability we did not declare still reaches the broker, which
   * refuses and audits it, and so that params are forwarded as sent.
   */
  private handleServerMessages(client: Client): void {
    const handler = this.opts.serverMessages;
    // Only an HTTP response stream is read inside the call that opened it; a stdio pipe or in-memory pair is not.
    const contextFollowsCall = this.connector.kind === 'http';
    client.fallbackRequestHandler = async (req, extra) => {
      if (!handler || (req.method !== 'sampling/createMessage' && req.method !== 'elicitation/create')) {
        throw new McpError(ErrorCode.MethodNotFound, 'Method not found');
      }
      const route = routeMessage(this, contextFollowsCall, this.inFlight);
      return handler.request({ connector: this.connector, method: req.method, params: req.params, route, signal: extra.signal, timeoutMs: this.callTimeoutMs });
    };
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      handler?.log({ connector: this.connector, params: n.params, route: routeMessage(this, contextFollowsCall, this.inFlight) });
    });
  }

  /** The upstream's whole tool list, within its limits (tool-list.ts); each page is an Exchange capped at limits.toolListBytes. */
  private listAllTools(client: AnyClient): Promise<Tool[]> {
    const limit: BodyLimit = { bytes: this.limits.toolListBytes, key: 'toolListBytes' };
    return listAllTools(this.connector.name, this.limits, (cursor) =>
      this.exchange(limit, undefined, (signal) => requestOn(client, { method: 'tools/list', params: cursor === undefined ? {} : { cursor } }, ToolPageSchema, { signal, timeout: this.connectTimeoutMs })),
    );
  }

  /**
   * Runs one request to the upstream as an Exchange (exchange.ts): its HTTP request
   * and stream end with it, its body is capped at `limit`, and a failure of the
   * exchange's own (body too large, callMax) is what it throws.
   */
  private async exchange<T>(limit: BodyLimit, origin: CallOrigin | undefined, send: (signal: AbortSignal) => Promise<T>, prepare?: (ex: Exchange) => void, everyPostOwn = false): Promise<T> {
    const ex = new Exchange(limit, { everyPostOwn });
    prepare?.(ex);
    const scope: CallScope = origin ? { owner: this, origin, exchange: ex } : { owner: this, exchange: ex };
    bindScope(ex.requestSignal, scope);
    try {
      return await callContext.run(scope, () => send(ex.requestSignal));
    } catch (e) {
      throw ex.failure ?? e;
    } finally {
      ex.end();
    }
  }

  /** One re-read of the tool list (RelistScheduler paces them). */
  private async listOnce(log: Logger): Promise<void> {
    const client = this.client;
    if (!client || this._status.state !== 'ready') return;
    try {
      const before = JSON.stringify(this._tools);
      const tools = await this.listAllTools(client);
      // An unchanged list changes nothing and tells nobody: a list_changed storm with nothing new costs no agent a notification.
      if (client !== this.client || JSON.stringify(tools) === before) return;
      this._tools = tools;
      log.info({ tools: tools.length }, 'upstream tool list changed');
      this.opts.onToolsChanged();
    } catch (e) {
      log.warn({ err: errorMessage(e), kept: this._tools.length }, 'could not refresh the tool list; the previous list is kept');
    }
  }

  private onClosed(gen: number, client: AnyClient): void {
    this.closedClients.add(client);
    if (this.stopping || gen !== this.generation) return;
    if (this.client === client) this.client = undefined;
    const log = this.opts.logger.child({ connector: this.connector.name });
    if (this.startedAt > 0 && Date.now() - this.startedAt > MAX_BACKOFF_MS) this.backoff = this.opts.backoffMs ?? 250;
    this.scheduleRestart(gen, 'the upstream exited or closed the connection', log);
    this.opts.onToolsChanged();
  }

  private scheduleRestart(gen: number, reason: string, log: Logger): void {
    if (this.stopping || gen !== this.generation) return;
    this.restarts++;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this._status = { state: 'failed', reason, retryInMs: delay };
    log.warn({ reason, retryInMs: delay }, 'upstream failed; restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.start(), delay);
    this.restartTimer.unref();
  }

  /** Forwards one call. Throws GatehouseError with a stable code. */
  async call(name: string, args: Record<string, unknown>, opts: CallOptions): Promise<CallToolResult> {
    let client = this.client;
    const st = this._status;
    if (!client || st.state !== 'ready') {
      const why = st.state === 'not-ready' ? `${st.reason} (fix: ${st.fix})` : st.state === 'failed' ? `${st.reason}; retrying in ${st.retryInMs} ms` : st.state;
      throw new GatehouseError('CONNECTOR_NOT_READY', `connector "${this.connector.name}" is not ready: ${why}`);
    }
    if (this.oauth?.perAgent) {
      // Each agent acts upstream as itself: its own login, its own MCP session.
      const agent = opts.origin?.agent;
      if (agent === undefined) throw new GatehouseError('CONNECTOR_NOT_READY', `connector "${this.connector.name}" acts as the calling agent (oauth.per: agent), and this call names none`);
      client = await this.agentClient(agent);
    }
    const callMax = this.callMaxMs;
    const timeout = Math.min(this.callTimeoutMs, callMax);
    const origin = opts.origin;
    const connectorName = this.connector.name;
    if (origin) this.inFlight.add(origin);
    try {
      // The call's origin and Exchange travel with the request: the upstream's requests made during it find
      // their agent, and its HTTP request and stream end with it (timeout and cancellation included).
      const modern = this.isModern(client);
      // To a 2026-07-28 upstream each call carries its own capabilities and log level (modern-client.ts).
      const meta = modern ? modernCallMeta(this.connector, origin?.channel, opts.trace) : opts.trace ? { ...opts.trace } : undefined;
      // Its Mcp-Param-* headers, as its own tool definition declares them (param-headers.ts).
      const headers = modern ? paramHeaders(paramDeclarations(this._tools.find((t) => t.name === name)?.inputSchema), args) : {};
      const result = (await this.exchange(
        { bytes: this.limits.resultBytes, key: 'resultBytes' },
        origin,
        (signal) =>
          requestOn(client, { method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } }, CallToolResultSchema, {
            signal,
            timeout,
            ...(Object.keys(headers).length > 0 ? { headers } : {}),
            ...(opts.onprogress ? { onprogress: opts.onprogress, resetTimeoutOnProgress: true, maxTotalTimeout: callMax } : {}),
          }),
        (ex) => {
          ex.trace = opts.trace;
          ex.follow(opts.signal);
          // The SDK checks maxTotalTimeout only when progress arrives: this deadline holds whatever the upstream sends.
          ex.deadline(callMax, () => this.callMaxError(callMax));
        },
        modern,
      )) as CallToolResult;
      const bad = nonFinitePath(result);
      if (bad !== undefined) {
        throw new GatehouseError('UPSTREAM_PROTOCOL', `connector "${connectorName}" answered with a number JSON cannot carry (±Infinity, e.g. 1e400) at ${bad}; the result is refused rather than passed on as null`, {
          details: { path: bad },
        });
      }
      return result;
    } catch (e) {
      // 404 on our session: the server forgot it (restarted). Spec 2025-11-25 (transports §session management):
      // start a new session; closing the client makes onClosed reconnect, and the next call uses the new session.
      if (e instanceof StreamableHTTPError && e.code === 404) {
        void client.close().catch(() => undefined);
        throw new GatehouseError('UPSTREAM_UNAVAILABLE', `connector "${connectorName}" no longer knows the gateway's MCP session (did it restart?); reconnecting`, { cause: e });
      }
      if (e instanceof GatehouseError && e.code === 'OAUTH_LOGIN_REQUIRED' && !this.oauth?.perAgent) this.loginLost(e);
      if (opts.signal.aborted && !(e instanceof GatehouseError)) throw new GatehouseError('UPSTREAM_ERROR', `call to connector "${connectorName}" was cancelled`, { cause: e });
      const timedOut = (e instanceof McpError && e.code === ErrorCode.RequestTimeout) || (e instanceof SdkError && e.code === SdkErrorCode.RequestTimeout);
      if (timedOut && ((e as { data?: { maxTotalTimeout?: unknown } }).data?.maxTotalTimeout !== undefined)) throw this.callMaxError(callMax);
      throw classifyUpstreamError(connectorName, e, { timeoutMs: timeout, connectionClosed: this.closedClients.has(client) });
    } finally {
      if (origin) this.inFlight.delete(origin);
    }
  }

  /** timeouts.callMax: how long progress may keep a call going (default twice timeouts.call). */
  get callMaxMs(): number {
    return this.connector.timeouts.callMax ?? 2 * this.callTimeoutMs;
  }

  private callMaxError(callMax: number): GatehouseError {
    return new GatehouseError(
      'UPSTREAM_TIMEOUT',
      `connector "${this.connector.name}" did not finish within ${callMax} ms (timeouts.callMax; progress notifications extend a call up to it, not further)`,
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.relist.stop();
    this.unwatchSecrets();
    this._status = { state: 'stopped' };
    clearTimeout(this.restartTimer);
    const client = this.client;
    this.client = undefined;
    await this.subscription?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
    await this.closeAgentClients();
    await this.dispatcher?.close().catch(() => undefined);
  }
}

/** The GatehouseError an SDK error wraps (the v2 client's version probe wraps what the transport's fetch threw), if any. */
function gatehouseCause(e: unknown): GatehouseError | undefined {
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 4; x = (x as { cause?: unknown }).cause, depth++) {
    if (x instanceof GatehouseError) return x;
  }
  return undefined;
}

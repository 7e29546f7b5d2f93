import { createHash } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation';
import { z } from 'zod';
import {
  CallToolRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ListToolsRequestSchema,
  SetLevelRequestSchema,
  type ListToolsResult,
  type LoggingLevel,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import type { AgentChannel } from '../upstreams/call-context.js';
import { DEFAULT_LIMITS, limitsOf } from '../upstreams/limits.js';
import { isProvider, type ToolConnector } from '../registry/schema.js';
import { VERSION } from '../config/paths.js';
import { GatehouseError, JsonRpc, toJsonRpcError } from '../errors.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Gateway } from './gateway.js';
import { hintsOf, pageOf } from './catalog.js';
import { CallNotifications } from './call-notifications.js';
import { traceContext } from './trace.js';

export const TOOLS_PAGE_SIZE = 100;

/**
 * What tools/call is registered with. The SDK parses a request with the registered schema
 * first, and a failure there reaches the agent as -32603 carrying zod's raw issue list;
 * with this loose envelope its tools/call wrapper checks the params against
 * CallToolRequestSchema before our handler runs, and answers -32602.
 */
const CallToolEnvelopeSchema = CallToolRequestSchema.extend({ params: z.looseObject({}) }) as unknown as typeof CallToolRequestSchema;

export interface SessionInfo {
  agent: string;
  /** Filled in once the transport assigned it. */
  id: () => string;
  /** Told when a call starts (+1) and ends (-1): a session waiting on a call (an approval may take hours) is not idle. */
  busy?: (delta: 1 | -1) => void;
  /** The protocol revision the session negotiated, for audit records. */
  protocol?: string;
}

/** A digest of the tool objects an agent is listed (names, descriptions, schemas, annotations): equal digests, the same list. */
export function fingerprint(entries: ReadonlyArray<{ tool: unknown }>): string {
  const h = createHash('sha256');
  for (const e of entries) h.update(JSON.stringify(e.tool)).update('\n');
  return h.digest('hex');
}

/** The notification rate of the connector serving `name` (an unknown tool is refused before anything is sent: the default). */
export function notificationRate(gateway: Gateway, name: unknown): number {
  const entry = typeof name === 'string' ? gateway.catalog.byName.get(name) : undefined;
  const connector = entry && gateway.opts.registry.connectors.find((c): c is ToolConnector => c.name === entry.connector && !isProvider(c));
  return (connector ? limitsOf(connector) : DEFAULT_LIMITS).notificationsPerSecond;
}

/** McpError prefixes its message with "MCP error <code>: "; the JSON-RPC error on the wire carries ours alone. */
function rpcError(code: number, message: string, data?: unknown): McpError {
  const e = new McpError(code, message, data);
  e.message = message;
  return e;
}

function asMcpError(e: unknown): McpError {
  const j = toJsonRpcError(e);
  return rpcError(j.code, j.message, j.data);
}

/**
 * The SDK builds an Ajv instance per Server for `elicitInput`, which the
 * gateway never calls (upstreams' elicitations pass through as requests):
 * made on first use, it costs a session nothing (some 20 KiB each otherwise).
 */
function lazyValidator(): jsonSchemaValidator {
  let ajv: AjvJsonSchemaValidator | undefined;
  return { getValidator: (schema) => (ajv ??= new AjvJsonSchemaValidator()).getValidator(schema) };
}

/**
 * One low-level MCP Server per agent session. It only lists and calls what
 * the gateway's catalog exposes to this agent.
 */
export function createSessionServer(gateway: Gateway, session: SessionInfo): Server {
  const server = new Server(
    { name: 'gatehouse', version: VERSION, title: 'Gatehouse MCP gateway' },
    {
      capabilities: { tools: { listChanged: true }, logging: {} },
      instructions: 'Tools brokered by Gatehouse. Every call is decided by policy and audited.',
      jsonSchemaValidator: lazyValidator(),
    },
  );

  // logging/setLevel is per session: it filters the upstreams' log messages forwarded to this agent's calls.
  let logLevel: LoggingLevel | undefined;

  const visible = () => gateway.catalog.sorted.filter((e) => !gateway.opts.hidden(session.agent, e.connector, e.name, hintsOf(e.tool.annotations)));

  server.setRequestHandler(ListToolsRequestSchema, async (req): Promise<ListToolsResult> => {
    let page;
    try {
      page = pageOf(visible(), req.params?.cursor, TOOLS_PAGE_SIZE);
    } catch {
      throw rpcError(JsonRpc.InvalidParams, 'Invalid cursor');
    }
    await gateway.opts.audit
      .append({ event: 'tools/list', agent: session.agent, session: session.id(), ...(session.protocol !== undefined ? { protocol: session.protocol } : {}), count: page.page.length })
      .catch((e: unknown) => {
        throw asMcpError(e);
      });
    // Redacted when built too; again here for a secret value learned since (a rotation).
    return { tools: gateway.opts.redact(page.page.map((e) => e.tool)), ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}) };
  });

  server.setRequestHandler(CallToolEnvelopeSchema, async (req, extra) => {
    if (gateway.isClosing) throw asMcpError(new GatehouseError('UPSTREAM_UNAVAILABLE', 'the gateway is shutting down'));
    const progressToken = req.params._meta?.progressToken;
    // Progress and log messages, at most the connector's rate; what is left reaches the agent before the result.
    const notes = new CallNotifications({
      perSecond: notificationRate(gateway, req.params.name),
      sendProgress: (p) =>
        progressToken === undefined ? Promise.resolve() : extra.sendNotification({ method: 'notifications/progress', params: { ...boundedProgress(gateway.opts.redact(p)), progressToken } }),
      sendLog: (params) => extra.sendNotification({ method: 'notifications/message', params }),
    });
    // The upstream's own requests and log messages during this call ride this call's stream (relatedRequestId).
    const channel: AgentChannel = {
      capabilities: () => server.getClientCapabilities(),
      logLevel: () => logLevel,
      createMessage: (params, o) => extra.sendRequest({ method: 'sampling/createMessage', params }, CreateMessageResultSchema, o),
      elicit: (params, o) => extra.sendRequest({ method: 'elicitation/create', params }, ElicitResultSchema, o),
      log: (params, prepare) => notes.log(params, prepare),
    };
    // The agent's trace context, passed upstream when the gateway traces nothing itself; with tracing on it is already the parent of the request's span.
    const traceMeta = traceContext(req.params._meta);
    session.busy?.(1);
    const trace = gateway.opts.tracing?.call(session.id(), extra.requestId);
    try {
      const result = await gateway.callTool({
        agent: session.agent,
        session: session.id(),
        ...(session.protocol !== undefined ? { protocol: session.protocol } : {}),
        ...(traceMeta ? { traceMeta } : {}),
        name: req.params.name,
        args: req.params.arguments ?? {},
        signal: extra.signal,
        channel,
        stats: () => notes.stats(),
        ...(progressToken !== undefined ? { onprogress: (p) => notes.progress(p) } : {}),
        ...(trace !== undefined ? { trace } : {}),
      });
      await notes.finish();
      return result;
    } catch (e) {
      await notes.finish();
      throw asMcpError(e);
    } finally {
      session.busy?.(-1);
    }
  });

  server.setRequestHandler(SetLevelRequestSchema, async (req) => {
    logLevel = req.params.level;
    return {};
  });

  // list_changed only when this agent's own list changed: a change to a tool hidden from it must not reach it (an oracle on hidden tools).
  let listed = fingerprint(visible());
  const onCatalog = () => {
    const now = fingerprint(visible());
    if (now === listed) return;
    listed = now;
    void server.sendToolListChanged().catch(() => undefined);
  };
  gateway.on('catalog', onCatalog);
  server.onclose = () => {
    gateway.off('catalog', onCatalog);
  };
  return server;
}

/** The most of a progress `message` an agent is sent (the upstream's text; cut, with its size noted). */
export const PROGRESS_MESSAGE_CHARS = 1024;

/** Only the fields progress has (MCP 2025-11-25, utilities/progress), the message cut: an upstream's 4 MiB message is not the agent's. */
export function boundedProgress(p: Progress): Progress {
  const out: Progress = { progress: p.progress };
  if (typeof p.total === 'number') out.total = p.total;
  if (typeof p.message === 'string') {
    out.message = p.message.length > PROGRESS_MESSAGE_CHARS ? `${p.message.slice(0, PROGRESS_MESSAGE_CHARS)}… (cut by Gatehouse, ${p.message.length} characters)` : p.message;
  }
  return out;
}

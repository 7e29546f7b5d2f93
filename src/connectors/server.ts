import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ZodError } from 'zod';
import { VERSION } from '../config/paths.js';
import { issueMessage, keyOf } from '../config/zod-issues.js';
import { GatehouseError } from '../errors.js';
import type { Logger } from '../log.js';
import { ProviderError, sanitize } from './errors.js';
import { networkFailure } from './http.js';
import { PathArgError } from './paths.js';
import { failure, structured, toolOf, type ToolSpec } from './tool.js';
import type { ProviderApi } from './api.js';

export interface ToolServerOptions<Api extends { base: ProviderApi }> {
  name: string;
  tools: readonly ToolSpec<Api>[];
  api: Api;
  logger: Logger;
}

/** A tool's failure as a tool result (isError): says what went wrong and what to do, never a credential. */
export function failureResult(e: unknown, api: ProviderApi): CallToolResult {
  const ctx = api.errorContext;
  if (e instanceof PathArgError) return failure(`Invalid argument: ${e.message}. Nothing was sent to ${ctx.provider}.`, { kind: 'args', arg: e.arg });
  if (e instanceof ZodError) {
    const first = e.issues[0];
    const where = first && first.path.length > 0 ? keyOf(first.path) : 'arguments';
    return failure(`Invalid argument ${where}: ${first ? issueMessage(first) : 'invalid'}. Nothing was sent to ${ctx.provider}.`, { kind: 'args' });
  }
  if (e instanceof GatehouseError && !(e instanceof ProviderError)) return failure(e.message, { kind: e.code === 'SECRET_MISSING' ? 'secret' : 'gateway', code: e.code });
  const pe = e instanceof ProviderError ? e : networkFailure(e, ctx);
  return failure(pe.message, {
    kind: pe.kind,
    provider: ctx.provider,
    ...(pe.status !== undefined ? { status: pe.status } : {}),
    ...(pe.retryAfterMs !== undefined ? { retryAfterMs: pe.retryAfterMs } : {}),
  });
}

/**
 * A built-in connector as an in-process MCP server (SDK low-level Server), so
 * its calls take the same path as any upstream's: catalog, argument check,
 * policy, audit, redaction. Handlers run only after policy allowed the call.
 */
export function createToolServer<Api extends { base: ProviderApi }>(opts: ToolServerOptions<Api>): Server {
  const server = new Server({ name: `gatehouse-${opts.name}`, version: VERSION }, { capabilities: { tools: {} } });
  const listed = opts.tools.map((t) => toolOf(t as ToolSpec<unknown>));
  const byName = new Map(opts.tools.map((t) => [t.name, t]));
  const log = opts.logger.child({ connector: opts.name });

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: listed }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const spec = byName.get(req.params.name);
    if (!spec) return failure(`Unknown tool ${sanitize(String(req.params.name))}`, { kind: 'args' });
    try {
      const args = spec.input.parse(req.params.arguments ?? {});
      const out = await spec.run(opts.api, args, { signal: extra.signal });
      const checked = spec.output.safeParse(out);
      if (!checked.success) throw new ProviderError('protocol', `${opts.api.base.errorContext.provider} answered in a shape this connector does not understand (${checked.error.issues[0]?.path.join('.') ?? ''})`);
      return structured(checked.data as Record<string, unknown>);
    } catch (e) {
      const result = failureResult(e, opts.api.base);
      if (!(e instanceof ProviderError) && !(e instanceof PathArgError) && !(e instanceof ZodError) && !(e instanceof GatehouseError)) {
        log.warn({ tool: spec.name, err: sanitize(e instanceof Error ? e.message : String(e)) }, 'connector call failed');
      }
      return result;
    }
  });
  server.onclose = () => void opts.api.base.close();
  return server;
}

/** Connects `server` to one end of an in-memory pair and returns the other end for the gateway's Client. */
export async function linkedTransport(server: Server): Promise<Transport> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  return clientSide;
}

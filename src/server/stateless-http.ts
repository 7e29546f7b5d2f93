/**
 * The HTTP edge of the 2026-07-28 revision (transports/streamable-http): one
 * POST, one JSON-RPC request, one answer, no session. The answer is a single
 * JSON object unless something must reach the agent before it (progress, log
 * messages, a subscriptions/listen stream), in which case the response
 * becomes an SSE stream at that moment. Under the Node server the reply is
 * written straight to the Node response: no SDK transport per request and no
 * Web Request/Response copies on the way (issue #21).
 *
 * Closing the response before its end is cancellation (§Cancellation). A
 * `Mcp-Session-Id` header is ignored and never echoed (§Backward
 * Compatibility): the modern era has no session, so the request is served on
 * its own and reaches no 2025 session's state.
 */
import type { ServerResponse } from 'node:http';
import type { McpReply, StatelessCaller, StatelessMcp } from '../broker/stateless-server.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { EraVerdict } from './era.js';

/** SSE comment lines keep a quiet stream open through proxies and client idle timers (§Receiving Messages). */
export const KEEP_ALIVE_MS = 15_000;

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

function frame(message: unknown): string {
  return frameText(JSON.stringify(message));
}

function frameText(json: string): string {
  return `event: message\ndata: ${json}\n\n`;
}

type Body = { jsonrpc: '2.0'; id: string | number; result: unknown } | { jsonrpc: '2.0'; id: string | number; error: { code: number; message: string; data?: unknown } };

/** The common part: decides JSON or SSE, serialises, ends once. Subclasses write. */
abstract class Reply implements McpReply {
  protected sse = false;
  protected done = false;
  private keepAlive: NodeJS.Timeout | undefined;
  protected readonly aborted = new AbortController();

  constructor(protected readonly id: string | number) {}

  /** The agent closed the response before its end: cancellation, and nothing more is written. */
  protected hungUp(): void {
    clearInterval(this.keepAlive);
    if (!this.done) this.aborted.abort(new Error('the agent closed the request'));
  }

  get signal(): AbortSignal {
    return this.aborted.signal;
  }

  protected abstract open(): void;
  protected abstract write(text: string): void;
  protected abstract finish(status: number, text: string): void;

  notify(method: string, params: Record<string, unknown>): void {
    if (this.done) return;
    this.openSse();
    this.write(frame({ jsonrpc: '2.0', method, params }));
  }

  stream(): void {
    this.openSse();
    this.keepAlive ??= setInterval(() => {
      if (!this.done) this.write(':\n\n');
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  result(result: Record<string, unknown>): void {
    this.end({ jsonrpc: '2.0', id: this.id, result }, 200);
  }

  error(code: number, message: string, data?: unknown, status = 200): void {
    this.end({ jsonrpc: '2.0', id: this.id, error: { code, message, ...(data !== undefined ? { data } : {}) } }, status);
  }

  private openSse(): void {
    if (this.sse || this.done) return;
    this.sse = true;
    this.open();
  }

  private end(body: Body, status: number): void {
    if (this.done) return;
    let text: string;
    try {
      text = JSON.stringify(body);
    } catch {
      text = JSON.stringify({ jsonrpc: '2.0', id: this.id, error: { code: -32603, message: 'Internal gateway error' } });
    }
    this.done = true;
    clearInterval(this.keepAlive);
    this.finish(status, this.sse ? frameText(text) : text);
  }
}

/** Written to the Node response itself. */
class NodeReply extends Reply {
  constructor(
    id: string | number,
    private readonly res: ServerResponse,
  ) {
    super(id);
    res.once('close', () => this.hungUp());
  }

  protected open(): void {
    this.res.writeHead(200, SSE_HEADERS);
    this.res.flushHeaders();
  }

  protected write(text: string): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(text);
  }

  protected finish(status: number, text: string): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (this.sse) this.res.end(text);
    else {
      this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      this.res.end(text);
    }
  }
}

/** An in-process fetch (no Node server: tests): a Web Response, streamed when it turns into SSE. */
class WebReply extends Reply {
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private readonly encoder = new TextEncoder();
  private resolve!: (r: Response) => void;
  readonly response = new Promise<Response>((r) => (this.resolve = r));

  constructor(id: string | number, signal: AbortSignal) {
    super(id);
    if (signal.aborted) this.aborted.abort(signal.reason);
    else signal.addEventListener('abort', () => this.hungUp(), { once: true });
  }

  protected open(): void {
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.controller = c;
      },
      cancel: () => this.hungUp(),
    });
    this.resolve(new Response(body, { status: 200, headers: SSE_HEADERS }));
  }

  protected write(text: string): void {
    this.controller?.enqueue(this.encoder.encode(text));
  }

  protected finish(status: number, text: string): void {
    if (this.sse) {
      this.write(text);
      this.controller?.close();
    } else {
      this.resolve(new Response(text, { status, headers: { 'content-type': 'application/json' } }));
    }
  }
}

/**
 * Serves one request of the 2026-07-28 era. Under the Node server the answer
 * is written to `outgoing` and undefined is returned; otherwise the Response.
 */
export async function serveStateless(
  verdict: Extract<EraVerdict, { era: 'modern' }>,
  caller: StatelessCaller,
  mcp: StatelessMcp,
  raw: { outgoing?: ServerResponse | undefined; signal: AbortSignal; header: (name: string) => string | undefined },
  logger: Logger,
): Promise<Response | undefined> {
  // This revision defines no client notification over HTTP (cancellation is closing the stream): accepted, nothing to do.
  if (verdict.kind === 'notification') return new Response(null, { status: 202 });
  const msg = verdict.message;
  const reply = raw.outgoing ? new NodeReply(msg.id, raw.outgoing) : new WebReply(msg.id, raw.signal);
  const params = (typeof msg.params === 'object' && msg.params !== null ? msg.params : {}) as Record<string, unknown>;
  const handled = mcp.handle({ caller, id: msg.id, method: msg.method, params, version: verdict.version, header: raw.header }, reply).catch((e: unknown) => {
    logger.error({ err: errorMessage(e), method: msg.method }, 'stateless request failed');
    reply.error(-32603, 'Internal gateway error');
  });
  if (reply instanceof WebReply) {
    void handled;
    return reply.response;
  }
  await handled;
  return undefined;
}

/**
 * A lean Streamable HTTP MCP client for load generation: pre-serialised
 * bodies over a keep-alive undici pool, SSE or JSON answers. The SDK Client
 * validates every message with zod; here the load generator should cost as
 * little CPU as possible, so the server side is what gets measured.
 */
import { Agent, request } from 'undici';

export const PROTOCOL_VERSION = '2025-11-25';

export interface McpTarget {
  /** http://host:port/path; with socketPath only the path and Host are used. */
  url: string;
  socketPath?: string;
  headers?: Record<string, string>;
  /** '2026-07-28': no initialize, no session; every request carries its envelope and the Mcp-Method/Mcp-Name headers. */
  protocol?: '2026-07-28';
}

export interface McpSession {
  /** One tools/call; resolves with the first text content, throws on an error answer. */
  call(tool: string, args: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/** The JSON-RPC message in a JSON or SSE body (the answer to our request). */
export function parseAnswer(contentType: string, text: string): Record<string, unknown> {
  if (contentType.startsWith('text/event-stream')) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const msg = JSON.parse(line.slice(5)) as Record<string, unknown>;
      if ('result' in msg || 'error' in msg) return msg;
    }
    throw new Error(`no JSON-RPC answer in the event stream: ${text.slice(0, 200)}`);
  }
  return JSON.parse(text) as Record<string, unknown>;
}

export async function openSession(target: McpTarget, connections: number): Promise<McpSession> {
  const dispatcher = new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    ...(target.socketPath ? { connect: { socketPath: target.socketPath } } : {}),
  });
  const url = new URL(target.url);
  const base: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...(target.socketPath ? { host: url.host } : {}),
    ...target.headers,
  };
  const post = async (body: string, headers: Record<string, string>) => {
    const res = await request(url, { method: 'POST', dispatcher, headers: { ...base, ...headers }, body });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  };
  if (target.protocol === '2026-07-28') return modernSession(post, () => dispatcher.close());
  const init = await post(
    JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'gatehouse-bench', version: '1' } } }),
    {},
  );
  if (init.status !== 200) throw new Error(`initialize: HTTP ${init.status} ${init.text.slice(0, 300)}`);
  const answer = parseAnswer(String(init.headers['content-type'] ?? ''), init.text) as { result?: { protocolVersion?: string } };
  const sid = init.headers['mcp-session-id'];
  const session: Record<string, string> = {
    'mcp-protocol-version': answer.result?.protocolVersion ?? PROTOCOL_VERSION,
    ...(typeof sid === 'string' ? { 'mcp-session-id': sid } : {}),
  };
  const done = await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), session);
  if (done.status !== 202 && done.status !== 200) throw new Error(`notifications/initialized: HTTP ${done.status} ${done.text.slice(0, 300)}`);
  let id = 1;
  return {
    async call(tool, args) {
      const res = await post(JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: tool, arguments: args } }), session);
      if (res.status !== 200) throw new Error(`tools/call ${tool}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
      const msg = parseAnswer(String(res.headers['content-type'] ?? ''), res.text) as { result?: { content?: Array<{ text?: string }>; isError?: boolean }; error?: { message?: string } };
      if (msg.error) throw new Error(`tools/call ${tool}: ${msg.error.message ?? 'error'}`);
      if (msg.result?.isError) throw new Error(`tools/call ${tool}: tool error ${msg.result.content?.[0]?.text ?? ''}`);
      return msg.result?.content?.[0]?.text ?? '';
    },
    async close() {
      if (typeof sid === 'string') {
        await request(url, { method: 'DELETE', dispatcher, headers: { ...base, ...session } })
          .then((r) => r.body.dump())
          .catch(() => undefined);
      }
      await dispatcher.close();
    },
  };
}

type Post = (body: string, headers: Record<string, string>) => Promise<{ status: number; headers: Record<string, unknown>; text: string }>;

/** A 2026-07-28 "session": nothing to open; each call is a request on its own (MCP 2026-07-28, transports/streamable-http). */
function modernSession(post: Post, close: () => Promise<void>): McpSession {
  const meta = JSON.stringify({
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name: 'gatehouse-bench', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  });
  let id = 1;
  return {
    async call(tool, args) {
      const body = `{"jsonrpc":"2.0","id":${id++},"method":"tools/call","params":{"name":${JSON.stringify(tool)},"arguments":${JSON.stringify(args)},"_meta":${meta}}}`;
      const res = await post(body, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool });
      if (res.status !== 200) throw new Error(`tools/call ${tool}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
      const msg = parseAnswer(String(res.headers['content-type'] ?? ''), res.text) as { result?: { content?: Array<{ text?: string }>; isError?: boolean }; error?: { message?: string } };
      if (msg.error) throw new Error(`tools/call ${tool}: ${msg.error.message ?? 'error'}`);
      if (msg.result?.isError) throw new Error(`tools/call ${tool}: tool error ${msg.result.content?.[0]?.text ?? ''}`);
      return msg.result?.content?.[0]?.text ?? '';
    },
    close,
  };
}

/** Latency of `n` sequential calls, in milliseconds. */
export async function sequentialLatencies(s: McpSession, tool: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const text = `ping ${i}`;
    const t0 = performance.now();
    const got = await s.call(tool, { text });
    out.push(performance.now() - t0);
    if (!got.includes(text)) throw new Error(`echo returned ${JSON.stringify(got.slice(0, 100))}, expected ${JSON.stringify(text)}`);
  }
  return out;
}

/** Calls completed per second with `concurrency` calls always in flight, for `ms`. */
export async function throughput(s: McpSession, tool: string, concurrency: number, ms: number): Promise<number> {
  const t0 = performance.now();
  const end = t0 + ms;
  let done = 0;
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < end; i++) {
      await s.call(tool, { text: `w${w} ${i}` });
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return (done * 1000) / (performance.now() - t0);
}

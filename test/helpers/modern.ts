/** Hand-made MCP 2026-07-28 requests (no SDK in the way): the headers and `_meta` envelope the spec requires, each overridable. */
import type { RawResponse } from './gateway.js';

export const MODERN = '2026-07-28';

let nextId = 1;

export interface ModernOptions {
  /** Header overrides; a value of null removes the header. */
  headers?: Record<string, string | null>;
  /** Merged over the envelope `_meta` (null removes a key). */
  meta?: Record<string, unknown>;
  id?: string | number;
  capabilities?: Record<string, unknown>;
}

export function envelope(capabilities: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': { name: 'modern-test', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': capabilities,
  };
}

/** The body and headers of one 2026-07-28 request. */
export function modernRequest(method: string, params: Record<string, unknown> = {}, o: ModernOptions = {}): { headers: Record<string, string>; body: string; id: string | number } {
  const id = o.id ?? nextId++;
  const meta: Record<string, unknown> = { ...envelope(o.capabilities), ...(params._meta as object | undefined) };
  for (const [k, v] of Object.entries(o.meta ?? {})) {
    if (v === null) delete meta[k];
    else meta[k] = v;
  }
  const body = { jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } };
  const headers: Record<string, string | null> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MODERN,
    'mcp-method': method,
    ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}),
  };
  for (const [k, v] of Object.entries(o.headers ?? {})) headers[k.toLowerCase()] = v;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== null) out[k] = v;
  return { headers: out, body: JSON.stringify(body), id };
}

/** The JSON-RPC response in a raw answer (a JSON body, or the message with the request's id in an SSE body). */
export function responseOf(r: RawResponse, id?: string | number): Record<string, unknown> {
  const msgs = r.messages() as Array<Record<string, unknown>>;
  const found = msgs.find((m) => ('result' in m || 'error' in m) && (id === undefined || m.id === id));
  if (!found) throw new Error(`no JSON-RPC response in ${r.status} ${r.text.slice(0, 500)}`);
  return found;
}

/** The notifications before the response in an SSE answer. */
export function notificationsOf(r: RawResponse): Array<Record<string, unknown>> {
  return (r.messages() as Array<Record<string, unknown>>).filter((m) => 'method' in m && !('id' in m));
}

/** A long-lived 2026-07-28 request (subscriptions/listen) read as it streams; `close()` hangs up. */
export interface OpenStream {
  status: Promise<number>;
  messages: Array<Record<string, unknown>>;
  /** Resolves with the first message (from now on, or already read) that `match` accepts. */
  next(match: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  ended: Promise<void>;
  close(): void;
}

export async function openStream(port: number, token: string, req: { headers: Record<string, string>; body: string }): Promise<OpenStream> {
  const { request } = await import('node:http');
  const messages: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let setStatus!: (n: number) => void;
  let setEnded!: () => void;
  const status = new Promise<number>((r) => (setStatus = r));
  const ended = new Promise<void>((r) => (setEnded = r));
  const h = request({ host: '127.0.0.1', port, method: 'POST', path: '/mcp', headers: { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}`, ...req.headers } }, (res) => {
    setStatus(res.statusCode ?? 0);
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) !== -1) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = event
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('');
        if (data !== '') messages.push(JSON.parse(data) as Record<string, unknown>);
      }
      for (const w of [...waiters]) w();
    });
    res.on('end', () => setEnded());
    res.on('close', () => setEnded());
  });
  h.on('error', () => setEnded());
  h.end(req.body);
  return {
    status,
    messages,
    ended,
    close: () => h.destroy(),
    next(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < messages.length; seen++) {
            const m = messages[seen] as Record<string, unknown>;
            if (match(m)) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(m);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages).slice(0, 500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

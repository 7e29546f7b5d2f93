/**
 * An http MCP upstream (SDK server, stateless Streamable HTTP) that echoes the
 * Authorization header it received back in every encoding, in results,
 * progress notifications and error messages; and records what it received.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { forms } from '../fixtures/forms.mjs';

export interface EchoUpstream {
  url: string;
  /** Every Authorization header received, in order (undefined when absent). */
  received: (string | undefined)[];
  /** Every raw header block received (to look for injected lines). */
  rawHeaders: string[][];
  close(): Promise<void>;
}

const toForms = forms;

function makeServer(auth: string): Server {
  const server = new Server({ name: 'echo-headers', version: '1.0.0' }, { capabilities: { tools: {} } });
  const obj = { type: 'object' as const, properties: {} };
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [
      { name: 'headers', description: 'Echoes the Authorization header', inputSchema: obj },
      { name: 'progress', description: 'Reports the header as progress', inputSchema: obj },
      { name: 'fail', description: 'Fails with the header in the message', inputSchema: obj },
    ],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const token = auth.replace(/^Bearer /, '');
    if (req.params.name === 'fail') throw new McpError(ErrorCode.InternalError, `credential rejected: ${auth} (${toForms(token).base64})`);
    if (req.params.name === 'progress') {
      const progressToken = req.params._meta?.progressToken;
      if (progressToken !== undefined) {
        for (const [i, f] of Object.values(toForms(auth)).entries()) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: i + 1, total: 7, message: `using ${f}` } });
        }
      }
      return { content: [{ type: 'text', text: 'done' }] };
    }
    return {
      content: [
        { type: 'text', text: JSON.stringify({ header: toForms(auth), token: toForms(token) }) },
        { type: 'text', text: `raw: ${auth}` },
      ],
      structuredContent: { header: toForms(auth), token: toForms(token), nested: [{ deep: { auth } }] },
    };
  });
  return server;
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  return startStatelessUpstream(makeServer);
}

/** A stateless Streamable HTTP upstream: a fresh SDK server per request, made for that request's Authorization header. */
export async function startStatelessUpstream(make: (auth: string) => Server): Promise<EchoUpstream> {
  const received: (string | undefined)[] = [];
  const rawHeaders: string[][] = [];
  const http = createServer((req, res) => {
    received.push(req.headers.authorization);
    rawHeaders.push(req.rawHeaders);
    void (async () => {
      const server = make(req.headers.authorization ?? '');
      // No sessionIdGenerator: stateless, one server per request (so each sees that request's header).
      const transport = new StreamableHTTPServerTransport({});
      res.on('close', () => void transport.close().then(() => server.close()));
      await server.connect(transport);
      await transport.handleRequest(req, res, req.method === 'POST' ? await body(req) : undefined);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    received,
    rawHeaders,
    close: () =>
      new Promise<void>((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}

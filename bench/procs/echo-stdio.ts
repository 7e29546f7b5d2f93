/**
 * The stdio upstream: an SDK v1 `McpServer` over `StdioServerTransport` with
 * the same `echo` tool as echo-upstream.ts, started by the gateway as a
 * `kind: stdio` connector.
 *   node dist/bench/procs/echo-stdio.js
 * `BENCH_KEY` (the connector's `${secret:…}` env) must be set: the secret
 * reaches the server, as the header does for the HTTP upstream.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

if (!process.env.BENCH_KEY) throw new Error('echo-stdio.js: BENCH_KEY is not set (the connector renders it from a secret)');

const server = new McpServer({ name: 'bench-echo-stdio', version: '1.0.0' });
server.registerTool(
  'echo',
  { description: 'Returns its text', inputSchema: z.strictObject({ text: z.string() }), annotations: { readOnlyHint: true } },
  async ({ text }) => ({ content: [{ type: 'text', text }] }),
);
await server.connect(new StdioServerTransport());

#!/usr/bin/env node
// An MCP server that records the trace context each tools/call reached it with:
//   node trace-upstream.mjs http PORT   (prints "LISTENING <port>")
//   node trace-upstream.mjs stdio
// Env: TRACE_LOG=FILE  one JSON line per tools/call: {tool, meta (params._meta), traceparent, tracestate (HTTP headers)}
import { appendFileSync } from 'node:fs';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { serveFixture } from '../fixtures/serve.mjs';

const log = process.env.TRACE_LOG;

function makeServer() {
  const server = new Server({ name: 'trace-upstream', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [
      { name: 'echo', description: 'Returns its text', inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } },
      { name: 'fail', description: 'Returns a tool error', inputSchema: { type: 'object', properties: {} } },
    ],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const headers = extra.requestInfo?.headers ?? {};
    if (log) {
      appendFileSync(log, `${JSON.stringify({ tool: req.params.name, meta: req.params._meta ?? null, traceparent: headers.traceparent ?? null, tracestate: headers.tracestate ?? null })}\n`);
    }
    if (req.params.name === 'fail') return { content: [{ type: 'text', text: 'it failed' }], isError: true };
    return { content: [{ type: 'text', text: String(req.params.arguments?.text ?? '') }] };
  });
  return server;
}

await serveFixture('trace-upstream.mjs', makeServer);

/**
 * Peer: npm `mcp-proxy` forwarding Streamable HTTP to the same upstream, in
 * its own process. Its CLI only fronts a stdio command, so this composes the
 * CLI's own parts (`startHTTPServer` + `proxyServer`, one shared upstream
 * client, one proxy `Server` per session) over an HTTP client transport.
 *   node dist/bench/procs/mcp-proxy.js UPSTREAM_URL   prints "LISTENING <port>"
 */
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Server } from '@modelcontextprotocol/server';
import { proxyServer, startHTTPServer } from 'mcp-proxy';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: mcp-proxy.js UPSTREAM_URL');

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const client = new Client({ name: 'mcp-proxy', version: '1.0.0' }, { capabilities: {} });
await client.connect(new StreamableHTTPClientTransport(new URL(upstream)));
const port = await freePort();
await startHTTPServer({
  createServer: async () => {
    const serverCapabilities = client.getServerCapabilities() ?? {};
    const server = new Server(client.getServerVersion() ?? { name: 'proxy', version: '1' }, { capabilities: serverCapabilities });
    await proxyServer({ client, server, serverCapabilities });
    return server;
  },
  eventStore: false,
  host: '127.0.0.1',
  port,
  sseEndpoint: null,
  streamEndpoint: '/mcp',
});
process.stdout.write(`LISTENING ${port}\n`);
process.on('SIGTERM', () => process.exit(0));

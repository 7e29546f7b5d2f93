import { it } from 'vitest';
import { request } from 'node:http';
import { MCP_HEADERS, startTestGateway, stdioFixture } from '../helpers/gateway.js';
it('dbg', async () => {
  const t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { maxBodyBytes: 65536 } });
  const token = await t.mint('alice');
  const sid = await t.openSession(token);
  const hdr = { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${token}`, host: `127.0.0.1:${t.port}` };
  const big = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'y'.repeat(140000) } } }));
  const r1 = await t.raw({ token, headers: { ...hdr, 'transfer-encoding': 'chunked' }, body: [big.subarray(0, 8192), big.subarray(8192)] });
  console.log('413?', r1.status, r1.headers);
  const small = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'ok' } } }));
  const r2 = await Promise.race([t.raw({ token, headers: { ...hdr }, body: small }), new Promise((r) => setTimeout(() => r('TIMEOUT'), 3000))]);
  console.log('second', r2 === 'TIMEOUT' ? r2 : (r2 as any).status);
  await t.close();
}, 20000);

import { afterAll, beforeAll, it } from 'vitest';
import { mintToken } from '../../src/server/tokens.js';
import { startTestGateway, stdioFixture, rawRequest, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
beforeAll(async () => { t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] }); });
afterAll(async () => { await t.close(); });

it('probe', async () => {
  const agent = await t.mint('coder');
  const admin = (await mintToken(t.gw.keys, 'ops', 600_000, Date.now(), { admin: true })).token;
  await t.client('coder');
  const paths = ['/admin/v1/sessions', '/admin/v1/sessions/', '//admin/v1/sessions', '/admin//v1/sessions', '/%61dmin/v1/sessions', '/admin/v1/%73essions', '/admin%2fv1/sessions', '/ADMIN/v1/sessions', '/admin/v1/sessions?x=1', '/admin/v1/./sessions', '/x/../admin/v1/sessions', '/admin/v1/sessions/../status', '/admin', '/admin/v1/status', '/admin/v1/sessions%00'];
  for (const p of paths) {
    for (const [n, tok] of [['none', undefined], ['agent', agent], ['admin', admin]] as const) {
      const r = await rawRequest(t.port, { method: 'GET', path: p, headers: tok ? { authorization: `Bearer ${tok}` } : {} });
      console.log(p, n, r.status, r.text.slice(0, 150));
    }
  }
  // header tricks
  for (const h of [`bearer ${admin}`, `Bearer  ${admin}`, `Bearer ${admin} `, `Bearer\t${admin}`, `Bearer ${admin}, Bearer ${agent}`]) {
    const r = await rawRequest(t.port, { method: 'GET', path: '/admin/v1/sessions', headers: { authorization: h } });
    console.log(JSON.stringify(h.slice(0, 12)), r.status, r.text.slice(0, 100));
  }
});

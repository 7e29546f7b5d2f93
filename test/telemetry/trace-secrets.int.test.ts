/**
 * A hostile (or careless) model provider echoes the API key the gateway
 * injected into its answer's own fields: the model name and the stop reason.
 * The audit record is redacted whole; the model call's span must be too
 * (invariant 5: a secret value never leaves the gateway in what it exports).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../connectors/helpers.js';
import { startTestGateway, stdioFixture, TEST_POLICY, until, type TestGateway } from '../helpers/gateway.js';
import { KIND, startHttpCollector, type Collector, type ReceivedSpan } from './otlp.js';

const KEY = 'sk-ant-echoed-0123456789abcdef';

let provider: Server;
let providerUrl: string;
let c: Collector;
let t: TestGateway;

beforeAll(async () => {
  // Answers every /v1/messages with the x-api-key it was sent, in the model name and the stop reason.
  provider = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = String(req.headers['x-api-key'] ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'msg_1', type: 'message', role: 'assistant', model: `claude-${key}`, content: [{ type: 'text', text: 'hi' }], stop_reason: `end_turn ${key}`, usage: { input_tokens: 3, output_tokens: 1 } }));
    });
  });
  await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
  providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
  c = await startHttpCollector();
  const before = { ...process.env };
  Object.assign(process.env, { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_EXPORTER_OTLP_ENDPOINT: c.endpoint });
  try {
    t = await startTestGateway({
      connectors: (log) => [stdioFixture('fx', log), { name: 'anth', kind: 'inference', api: 'anthropic', url: providerUrl, headers: { 'x-api-key': '${secret:anth-key}' }, models: { allow: ['claude-*'] } }],
      policy: { ...TEST_POLICY, rules: [...TEST_POLICY.rules, { id: 'models', match: { model: '*' }, effect: 'allow' }] },
      runtime: { secrets: new MemoryStore({ 'anth-key': KEY }) },
    });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in before)) delete process.env[k];
    Object.assign(process.env, before);
  }
});

afterAll(async () => {
  await t?.close();
  await c?.close();
  await new Promise((r) => provider?.close(r));
});

describe('model call spans and a provider that echoes its key', () => {
  it('a provider echoing the injected key in its model name and stop reason never puts it on a span', async () => {
    const token = await t.mint('alice');
    const res = await fetch(`http://127.0.0.1:${t.port}/llm/anth/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': token },
      body: JSON.stringify({ model: 'claude-sim', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const span = await until(async () => {
      await t.gw.tracing?.flush();
      return c.spans.find((s: ReceivedSpan) => s.kind === KIND.CLIENT && s.attributes['gen_ai.request.model'] === 'claude-sim' && s.attributes['gen_ai.response.model'] !== undefined);
    }, 'the model span', 20_000);
    // The provider's own text is on the span, redacted like the audit record.
    expect(String(span.attributes['gen_ai.response.model'])).toMatch(/^claude-/);
    expect(JSON.stringify(c.spans)).not.toContain(KEY);
  });
});

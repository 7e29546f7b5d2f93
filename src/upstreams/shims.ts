import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { ToolConnector } from '../registry/schema.js';

/** What the gateway's client declares: sampling and elicitation only where the registry allows them (form mode only, no tools, no context). */
export function clientCapabilities(c: ToolConnector): ClientCapabilities {
  return {
    ...(c.sampling === 'allow' ? { sampling: {} } : {}),
    ...(c.elicitation === 'allow' ? { elicitation: { form: {} } } : {}),
  };
}

/**
 * The SDK runs a notification's handler a microtask late but settles a response at
 * once, dropping the request's progress handler: a progress notification read in
 * the same chunk as the result (typical over stdio) was lost. Delivering responses
 * a microtask late keeps the wire order. Call after `client.connect()` (it sets onmessage).
 */
export function deliverResponsesInOrder(t: Transport): void {
  const deliver = t.onmessage;
  if (!deliver) return;
  t.onmessage = (m, extra) => {
    if ('id' in m && !('method' in m)) queueMicrotask(() => deliver(m, extra));
    else deliver(m, extra);
  };
}

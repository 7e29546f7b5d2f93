/** `gatehouse connector test PROVIDER`: one call that every key may make (the model list), with the real key. */
import { undici, type Undici } from '../undici.js';
import { GatehouseError, errorMessage } from '../errors.js';
import type { InferenceProvider } from '../registry/schema.js';
import type { SecretResolver } from '../secrets/resolve.js';

export async function probeProvider(p: InferenceProvider, secrets: SecretResolver, signal: AbortSignal = AbortSignal.timeout(20_000)): Promise<string> {
  const headers: Record<string, string> = { accept: 'application/json' };
  for (const [name, template] of Object.entries(p.headers)) headers[name.toLowerCase()] = await secrets.render(template, { connector: p.name, where: `header ${name}` });
  if (p.api === 'anthropic') headers['anthropic-version'] ??= '2023-06-01';
  const url = `${p.url.replace(/\/+$/, '')}/v1/models`;
  let res;
  try {
    res = await undici().request(url, { headers, signal, maxRedirections: 0 } as Parameters<typeof Undici.request>[1]);
  } catch (e) {
    throw new GatehouseError('UPSTREAM_UNAVAILABLE', `cannot reach ${url}: ${errorMessage(e)}`);
  }
  const text = await res.body.text();
  if (res.statusCode === 401 || res.statusCode === 403) throw new GatehouseError('AUTH_INVALID', `the provider refused the key (${res.statusCode}); store the right one: gatehouse secret set ${secretHint(p)}`);
  if (res.statusCode !== 200) throw new GatehouseError('UPSTREAM_ERROR', `GET /v1/models answered ${res.statusCode}: ${text.slice(0, 200)}`);
  let ids: string[] = [];
  try {
    const data = (JSON.parse(text) as { data?: Array<{ id?: unknown }> }).data ?? [];
    ids = data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
  } catch {
    // A server without a model list in the usual shape still answered with this key.
  }
  return `${p.api} API answered with this key; ${ids.length} models${ids.length > 0 ? ` (${ids.slice(0, 6).join(', ')}${ids.length > 6 ? ', ...' : ''})` : ''}`;
}

function secretHint(p: InferenceProvider): string {
  const m = /\$\{secret:([^}]+)\}/.exec(Object.values(p.headers).join(' '));
  return m?.[1] ?? '<name>';
}

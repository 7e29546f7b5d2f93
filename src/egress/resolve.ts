/**
 * Name resolution for the proxy: every address of a name (the proxy checks
 * them all and connects to a checked one, never to the name again, so a
 * second answer cannot differ from the first: no DNS rebinding).
 */
import { lookup } from 'node:dns/promises';

/** The addresses of a host name; rejects when it has none. Injectable for tests. */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** `resolver(host)`, refused after `timeoutMs`. */
export async function resolveWithin(resolver: Resolver, host: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`resolving ${host} took longer than ${timeoutMs} ms`), { code: 'ETIMEOUT' })), timeoutMs);
  });
  try {
    return await Promise.race([resolver(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

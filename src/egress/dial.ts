/** Opening the upstream TCP connection: to checked IP addresses only, in order, within one deadline. */
import { connect, type Socket } from 'node:net';

export class DialError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

function once(address: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: address, port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new DialError(`connecting to ${address} port ${port} timed out`, true));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      reject(new DialError(`connecting to ${address} port ${port}: ${e.code ?? e.message}`, false));
    });
  });
}

/** The first of `addresses` (IP literals) that accepts a connection; the one used is returned with it. */
export async function dial(addresses: readonly string[], port: number, timeoutMs: number): Promise<{ socket: Socket; address: string }> {
  const deadline = Date.now() + timeoutMs;
  // Made only when needed: an Error's stack costs ~10 µs per connection.
  let last: DialError | undefined;
  for (const address of addresses) {
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(new DialError(`connecting to port ${port} timed out`, true));
    try {
      return { socket: await once(address, port, left), address };
    } catch (e) {
      last = e as DialError;
    }
  }
  throw last ?? new DialError('no address to connect to', false);
}

/**
 * A CONNECT tunnel's byte pump: both directions piped with backpressure,
 * bytes counted, closed when either side closes or both stay idle too long.
 */
import type { Socket } from 'node:net';

export interface TunnelEnd {
  bytesUp: number;
  bytesDown: number;
  /** 'closed' (either side ended or closed), 'idle' (timeout), or 'error: …'. */
  outcome: string;
}

export function runTunnel(client: Socket, upstream: Socket, head: Buffer, idleTimeoutMs: number): Promise<TunnelEnd> {
  return new Promise((resolve) => {
    const end: TunnelEnd = { bytesUp: head.length, bytesDown: 0, outcome: 'closed' };
    let closed = 0;
    const onClose = (): void => {
      client.destroy();
      upstream.destroy();
      if (++closed === 2) resolve(end);
    };
    const onError = (side: string) => (e: NodeJS.ErrnoException) => {
      if (end.outcome === 'closed') end.outcome = `error: ${side} ${e.code ?? e.message}`;
    };
    const onIdle = (): void => {
      end.outcome = 'idle';
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (b: Buffer) => (end.bytesUp += b.length));
    upstream.on('data', (b: Buffer) => (end.bytesDown += b.length));
    client.on('error', onError('client'));
    upstream.on('error', onError('upstream'));
    client.once('close', onClose);
    upstream.once('close', onClose);
    client.setTimeout(idleTimeoutMs, onIdle);
    upstream.setTimeout(idleTimeoutMs, onIdle);
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}

/**
 * Pipelined HTTP/1.1 requests (the gateway's listeners, the egress proxy):
 * a response queued behind another closes with its connection.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A request pipelined behind another gets its response's socket only when the
 * one before it ends. If the client hangs up first, Node never closes that
 * response: nothing waiting for its 'close' — the agent's in-flight count, the
 * request's abort signal (a pending approval withdrawn, a model call's upstream
 * request aborted) — would ever hear of it, and an agent could use up its
 * in-flight slots for good by pipelining and hanging up. Its connection
 * closing closes it, as Node does for a response that has its socket.
 */
export function closeWithConnection(incoming: IncomingMessage, outgoing: ServerResponse): void {
  if (outgoing.socket !== null) return;
  const socket = incoming.socket;
  if (socket.destroyed) return void queueMicrotask(() => closeQueued(outgoing));
  // One listener per connection, however many responses queue on it (one each warned past 10 and cost a removal each).
  let queued = queuedOn.get(socket);
  if (queued === undefined) {
    const responses = new Set<ServerResponse>();
    queued = responses;
    queuedOn.set(socket, responses);
    socket.once('close', () => {
      queuedOn.delete(socket);
      for (const res of responses) closeQueued(res);
      responses.clear();
    });
  }
  const waiting = queued;
  waiting.add(outgoing);
  // Given its socket after all: Node closes it with that socket from then on.
  const forget = (): void => void waiting.delete(outgoing);
  outgoing.once('socket', forget);
  outgoing.once('close', forget);
}

/** Responses queued (pipelined) on a connection, closed with it (closeWithConnection). */
const queuedOn = new WeakMap<Socket, Set<ServerResponse>>();

function closeQueued(outgoing: ServerResponse): void {
  const res = outgoing as ServerResponse & { _closed?: boolean };
  if (res.writableFinished || res._closed === true) return;
  // As Node's own close does: marked destroyed and closed first, so a writer that checks (hono's) stops, and a later close is a no-op.
  res.destroyed = true;
  res._closed = true;
  res.emit('close');
}

/**
 * Idle kept-alive upstream connections of the plain-HTTP forwarder, kept per
 * caller and handed out only for the checked (address, port) of a request.
 *
 * A socket is lent to one exchange at a time and comes back only when that
 * exchange ended cleanly (proxy.ts decides). While it waits here nothing may
 * arrive on it: any byte, end or error destroys it, so an upstream's
 * unsolicited answer is never read as the next request's. Bounded per
 * (caller, address, port), per caller, per principal (an agent's sandboxes
 * together) and in all, closed after an idle time, and never keeping the
 * process alive.
 */
import type { Socket } from 'node:net';
import type { EgressIdentity } from './gate.js';

export interface UpstreamPoolLimits {
  /** The longest a connection waits idle (the upstream's Keep-Alive may make it shorter). */
  idleMs: number;
  /** Idle connections per (caller, address, port). */
  perTarget: number;
  /** Idle connections per caller, all targets together. */
  perCaller: number;
  /** Idle connections per principal (an agent or connector, all its sandboxes together). */
  perPrincipal: number;
  /** Idle connections in all. */
  total: number;
}

export interface Upstream {
  socket: Socket;
  /** The checked IP address the socket is connected to. */
  address: string;
}

interface Idle extends Upstream {
  port: number;
  principal: string;
  timer: NodeJS.Timeout;
  drop: () => void;
}

/**
 * The pool's key for a caller: principal and sandbox. Two sandboxes of one
 * agent, or an agent and a connector of the same name, never share a connection.
 */
export function callerKey(who: EgressIdentity): string {
  return JSON.stringify([who.caller.kind, who.caller.name, who.sandbox ?? null]);
}

/** The principal of a caller key: its kind and name, without the sandbox. */
function principalOf(caller: string): string {
  return JSON.stringify((JSON.parse(caller) as unknown[]).slice(0, 2));
}

/**
 * How long a connection may wait idle: `limitMs`, or less when the upstream
 * announced its own (the de facto `Keep-Alive: timeout=N`, in seconds): a
 * second short of it, so that its close does not cross our next request.
 */
export function idleTimeFor(keepAlive: string | undefined, limitMs: number): number {
  const m = /(?:^|[\s,])timeout\s*=\s*(\d{1,9})\b/i.exec(keepAlive ?? '');
  return m === null ? limitMs : Math.min(limitMs, Number(m[1]) * 1_000 - 1_000);
}

export class UpstreamPool {
  /** Per caller, oldest first. */
  readonly #idle = new Map<string, Idle[]>();
  /** Idle connections per principal. */
  readonly #perPrincipal = new Map<string, number>();
  #total = 0;
  readonly #limits: UpstreamPoolLimits;
  #closed = false;

  constructor(limits: UpstreamPoolLimits) {
    this.#limits = limits;
  }

  /** An idle connection of `caller` to one of `addresses` on `port` (the latest returned first), or undefined. */
  take(caller: string, addresses: readonly string[], port: number): Upstream | undefined {
    const list = this.#idle.get(caller) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i] as Idle;
      if (e.port !== port || !addresses.includes(e.address)) continue;
      this.#remove(caller, e);
      e.socket.ref();
      return { socket: e.socket, address: e.address };
    }
    return undefined;
  }

  /**
   * Keeps `up` (connected to its address and `port`) for `caller`'s next
   * request, or destroys it when it cannot be kept. `keepAlive`: the
   * upstream's Keep-Alive header in its last answer.
   */
  put(caller: string, up: Upstream, port: number, keepAlive: string | undefined): void {
    const { socket, address } = up;
    const idleMs = idleTimeFor(keepAlive, this.#limits.idleMs);
    const list = this.#idle.get(caller) ?? [];
    const principal = principalOf(caller);
    const full =
      this.#total >= this.#limits.total ||
      (this.#perPrincipal.get(principal) ?? 0) >= this.#limits.perPrincipal ||
      list.length >= this.#limits.perCaller ||
      list.filter((e) => e.address === address && e.port === port).length >= this.#limits.perTarget;
    if (this.#closed || full || idleMs <= 0 || socket.destroyed || !socket.writable || socket.readableEnded || socket.readableLength > 0) {
      socket.destroy();
      return;
    }
    const drop = (): void => {
      this.#remove(caller, e);
      socket.destroy();
    };
    const timer = setTimeout(drop, idleMs);
    timer.unref();
    const e: Idle = { socket, address, port, principal, timer, drop };
    socket.setTimeout(0);
    socket.on('data', drop);
    socket.on('end', drop);
    socket.on('error', drop);
    socket.on('close', drop);
    // Flowing, so that a byte arriving now is seen now, not when the next request has been written.
    socket.resume();
    socket.unref();
    list.push(e);
    this.#idle.set(caller, list);
    this.#perPrincipal.set(principal, (this.#perPrincipal.get(principal) ?? 0) + 1);
    this.#total++;
  }

  /** Destroys every idle connection; connections put back later are destroyed too. */
  close(): void {
    this.#closed = true;
    for (const list of [...this.#idle.values()]) for (const e of [...list]) e.drop();
    this.#idle.clear();
  }

  /** Idle connections held now (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  #remove(caller: string, e: Idle): void {
    clearTimeout(e.timer);
    e.socket.off('data', e.drop);
    e.socket.off('end', e.drop);
    e.socket.off('error', e.drop);
    e.socket.off('close', e.drop);
    const list = this.#idle.get(caller);
    if (list === undefined) return;
    const i = list.indexOf(e);
    if (i === -1) return;
    list.splice(i, 1);
    if (list.length === 0) this.#idle.delete(caller);
    this.#total--;
    const left = (this.#perPrincipal.get(e.principal) ?? 1) - 1;
    if (left <= 0) this.#perPrincipal.delete(e.principal);
    else this.#perPrincipal.set(e.principal, left);
  }
}

/**
 * The lifetime of one request the gateway makes upstream (a tool call, or a
 * page of a tool listing) and what it owns: the HTTP request that carries it
 * and that request's response stream: a call's lifetime owns its
 * resources. The custom fetch in upstream.ts finds the exchange through
 * `callContext` and ties the request's own POST to `streamSignal`; `end()`
 * aborts that POST and closes its stream, however the request ended.
 */
import type { GatehouseError } from '../errors.js';
import type { TraceContext } from '../telemetry/traces.js';

/** How a fetch made inside an exchange's async context relates to it. */
export type Tie =
  /** The exchange's own POST, or a GET resuming its stream: bound to its lifetime and body limit. */
  | 'own'
  /** A GET resuming the stream of an exchange that has ended: refused. */
  | 'ended'
  /** Anything else sent meanwhile (a notification, a reply to the upstream's request): not the exchange's. */
  | 'other';

export interface BodyLimit {
  bytes: number;
  /** The `limits:` key that sets it, for the message. */
  key: 'resultBytes' | 'toolListBytes';
}

export class Exchange {
  readonly limit: BodyLimit;
  /** W3C Trace Context for this request's own HTTP request (headers `traceparent`, `tracestate`), when traced. */
  trace: TraceContext | undefined;
  /**
   * Aborts `client.request`, which then sends notifications/cancelled upstream.
   * Only on a failure or cancellation: aborted after a normal end, the SDK would
   * cancel a request that has already finished.
   */
  private readonly request = new AbortController();
  private readonly stream = new AbortController();
  private _failure: GatehouseError | undefined;
  private ownPostTaken = false;
  /** 2026-07-28: every POST in the exchange is one of its own legs (the retries of multi round-trip requests). */
  private readonly everyPostOwn: boolean;
  private readonly cleanups: Array<() => void> = [];

  constructor(limit: BodyLimit, opts: { everyPostOwn?: boolean } = {}) {
    this.limit = limit;
    this.everyPostOwn = opts.everyPostOwn === true;
  }

  /** For `client.request`'s `signal`. */
  get requestSignal(): AbortSignal {
    return this.request.signal;
  }
  /** For the HTTP request and response stream this exchange owns. */
  get streamSignal(): AbortSignal {
    return this.stream.signal;
  }
  /** Why the gateway failed the exchange itself (body too large, callMax), if it did. */
  get failure(): GatehouseError | undefined {
    return this._failure;
  }
  get ended(): boolean {
    return this.stream.signal.aborted;
  }

  /**
   * The first POST made in the exchange's context is its request (the SDK sends
   * it synchronously from `client.request`); a GET is the SDK resuming its stream.
   * With a 2026-07-28 upstream nothing else is POSTed during a request (no answers
   * to server requests, cancellation is closing the stream): every POST is its own.
   */
  tie(method: string): Tie {
    if (method === 'GET') return this.ended ? 'ended' : 'own';
    if (method === 'POST' && (this.everyPostOwn || !this.ownPostTaken)) {
      this.ownPostTaken = true;
      return this.ended ? 'ended' : 'own';
    }
    return 'other';
  }

  /** Fails the exchange (the first failure wins) and cancels its request. */
  fail(e: GatehouseError): void {
    this._failure ??= e;
    this.request.abort(e);
  }

  /** The caller gave up (the agent cancelled): cancels the request without a failure of ours. */
  follow(signal: AbortSignal): void {
    if (signal.aborted) return this.request.abort(signal.reason);
    const onAbort = () => this.request.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.cleanups.push(() => signal.removeEventListener('abort', onAbort));
  }

  /** Fails the exchange after `ms`, whatever progress it makes. */
  deadline(ms: number, error: () => GatehouseError): void {
    const timer = setTimeout(() => this.fail(error()), ms);
    timer.unref();
    this.cleanups.push(() => clearTimeout(timer));
  }

  /** Ends the exchange: its HTTP request is aborted and its stream closed; nothing read on it afterwards reaches anyone. */
  end(): void {
    for (const c of this.cleanups.splice(0)) c();
    this.stream.abort(new DOMException('the upstream request has ended', 'AbortError'));
  }
}

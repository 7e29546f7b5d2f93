/**
 * A sink: where shipped records go. `send` resolves once the receiver has
 * acknowledged the whole batch (the shipper then moves its cursor past it)
 * and rejects with a SinkError otherwise; the shipper retries.
 */
import type { Encoded } from '../encode.js';

export interface Sink {
  send(batch: readonly Encoded[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Renders `${secret:NAME}` in a value at the moment it is sent (the keychain's current value). */
export type RenderSecret = (template: string, where: string) => Promise<string>;

export type SinkErrorKind =
  /** The receiver is unreachable, busy, slow or answered something unusable: try again later. */
  | 'retry'
  /** The receiver refuses these records (malformed, too large): a smaller batch, or a cut record, may pass. */
  | 'rejected'
  /** The receiver refuses our credential: retried, but nothing will pass until it is fixed. */
  | 'auth';

export class SinkError extends Error {
  readonly kind: SinkErrorKind;
  /** The receiver's Retry-After, when it gave one. */
  readonly retryAfterMs: number | undefined;
  constructor(kind: SinkErrorKind, message: string, retryAfterMs?: number) {
    super(message);
    this.name = 'SinkError';
    this.kind = kind;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Retry-After (RFC 9110 §10.2.3): seconds, or an HTTP date. */
export function retryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** One line of what a receiver said, for an error message: control characters escaped, at most 200 characters. */
export function said(text: string): string {
  const one = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return one.length > 200 ? `${one.slice(0, 200)}…` : one;
}

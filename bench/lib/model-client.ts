/**
 * A lean streaming Messages client for load generation: pre-serialised bodies
 * over a keep-alive undici pool; SSE read by hand, timing each event's arrival
 * (and, from the simulator's `"ts"`, its delivery delay). The Anthropic SDK
 * would parse and validate every event; here the client should cost as
 * little as possible, so the proxies are what gets measured.
 */
import { Agent, request } from 'undici';

export interface ModelTarget {
  /** The Messages endpoint: http://host:port/…/v1/messages */
  url: string;
  headers: Record<string, string>;
}

export interface StreamResult {
  status: number;
  /** Request sent → first body byte (the message_start event), ms. */
  ttfbMs: number;
  /** performance.now() at which each text delta arrived. */
  arrivals: number[];
  /** For each text delta: arrival minus the simulator's send time (wall clock), ms. */
  delays: number[];
  /** message_stop arrived. */
  complete: boolean;
  error?: string;
}

const TS = '"ts":';

export class ModelClient {
  readonly #dispatcher: Agent;
  readonly #headers: Record<string, string>;

  constructor(
    readonly target: ModelTarget,
    connections: number,
  ) {
    this.#dispatcher = new Agent({ connections, pipelining: 1, keepAliveTimeout: 60_000 });
    this.#headers = { 'content-type': 'application/json', accept: 'text/event-stream', 'anthropic-version': '2023-06-01', ...target.headers };
  }

  /** One streaming call; `timed` false skips the per-event bookkeeping (only TTFB and completion). */
  async stream(body: string, timed = true): Promise<StreamResult> {
    const t0 = performance.now();
    const out: StreamResult = { status: 0, ttfbMs: Number.NaN, arrivals: [], delays: [], complete: false };
    try {
      const res = await request(this.target.url, { method: 'POST', dispatcher: this.#dispatcher, headers: this.#headers, body });
      out.status = res.statusCode;
      if (res.statusCode !== 200) {
        out.error = `HTTP ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`;
        return out;
      }
      let pending = '';
      for await (const chunk of res.body) {
        const now = performance.now();
        if (Number.isNaN(out.ttfbMs)) out.ttfbMs = now - t0;
        pending += (chunk as Buffer).toString('utf8');
        const end = pending.lastIndexOf('\n\n');
        if (end < 0) continue;
        const whole = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (whole.includes('"message_stop"')) out.complete = true;
        if (!timed) continue;
        const wall = performance.timeOrigin + now;
        for (let i = whole.indexOf(TS); i >= 0; i = whole.indexOf(TS, i + TS.length)) {
          out.arrivals.push(now);
          out.delays.push(wall - Number.parseFloat(whole.slice(i + TS.length, i + TS.length + 24)));
        }
      }
      if (!out.complete) out.error = 'the stream ended without message_stop';
    } catch (e) {
      out.error = e instanceof Error ? e.message : String(e);
    }
    return out;
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }
}

/** Gaps between consecutive arrivals, ms. */
export function gaps(arrivals: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < arrivals.length; i++) out.push((arrivals[i] as number) - (arrivals[i - 1] as number));
  return out;
}

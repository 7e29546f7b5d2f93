/**
 * Splits a server-sent event stream into whole events as bytes arrive, so
 * that each event can be redacted and read for usage and forwarded at once:
 * a stream is never held whole, only the event being received.
 */
export class SseSplitter {
  #pending = '';
  readonly #decoder = new TextDecoder('utf-8');

  /** `holdBack()`: how many trailing characters a forced flush keeps back (so a secret is never cut in two by it). */
  constructor(
    private readonly maxPending = 1 << 20,
    private readonly holdBack: () => number = () => 0,
  ) {}

  /** The complete events in `chunk` (each with its blank-line terminator), plus, past `maxPending`, what is held so far. */
  push(chunk: Uint8Array): string[] {
    this.#pending += this.#decoder.decode(chunk, { stream: true });
    const out: string[] = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.#pending);
      if (!m) break;
      const end = m.index + m[0].length;
      out.push(this.#pending.slice(0, end));
      this.#pending = this.#pending.slice(end);
    }
    // A stream that never ends an event must not grow without bound: pass it on as it is.
    if (this.#pending.length > this.maxPending) {
      const keep = Math.min(Math.max(0, this.holdBack() - 1), this.#pending.length);
      out.push(this.#pending.slice(0, this.#pending.length - keep));
      this.#pending = this.#pending.slice(this.#pending.length - keep);
    }
    return out;
  }

  /** What is left once the stream ended (an event without its terminator). */
  end(): string {
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = '';
    return rest;
  }
}

/** The `data:` payload of one event (lines joined by "\n"), or undefined when it has none. */
export function eventData(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r\n|\n|\r/)) {
    if (!line.startsWith('data:')) continue;
    const v = line.slice(line.charAt(5) === ' ' ? 6 : 5);
    data = data === undefined ? v : `${data}\n${v}`;
  }
  return data;
}

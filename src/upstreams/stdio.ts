/**
 * The gateway's stdio client transport: one MCP server as a child
 * that cannot hurt the gateway or the other connectors.
 *
 * - The child runs in a process group of its own (detached); its own exit is
 *   watched, not only its pipes, so a grandchild holding stdout open cannot
 *   keep a dead connector "ready". On close, restart and stop the whole group
 *   gets SIGTERM, then SIGKILL after a grace.
 * - On Linux the child is `native/build/gatehouse-reaper`, a subreaper that
 *   runs the server and kills every descendant when it exits, including those
 *   that left the group with setsid(). Without it (not built, not Linux) only
 *   the group is stopped, and a warning says so once.
 * - stdout is read line by line with a cap (limits.resultBytes plus envelope):
 *   an oversized line is discarded as it streams (memory stays flat) and the
 *   call it answered fails naming the size and the limit.
 * - stderr is always drained; at most limits.stderrBytesPerSecond of it reach
 *   the log (token bucket), the rest is counted and reported once a second.
 * - Anything that is not JSON-RPC on stdout, and every stderr line, is logged
 *   with control and invisible characters escaped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, JSONRPCMessageSchema, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { packageRoot } from '../config/paths.js';
import type { Logger } from '../log.js';
import type { StdioConnector } from '../registry/schema.js';
import { escapeText } from '../terminal.js';
import { limitsOf, type UpstreamLimits } from './limits.js';

/** What a JSON-RPC response adds around a result of limits.resultBytes. */
export const LINE_OVERHEAD_BYTES = 64 * 1024;
/** Bytes kept from each end of an oversized stdout line, to find the id it answers. */
export const ID_PROBE_BYTES = 1024;
/** The longest stderr line logged; the rest of a longer one is dropped and counted. */
export const STDERR_LINE_BYTES = 2048;
/** Messages from one server handed on per turn of the event loop (see StdioTransport.queue). */
const MESSAGES_PER_TURN = 64;
/**
 * Messages that may wait for a server that is not reading its stdin (besides
 * the byte bound, one line's worth). A refused send is an answer the server
 * never gets, so this is far above what a busy server that reads later puts
 * behind it: 5,000 sampling requests written before reading one answer put
 * ~4,000 answers here on a loaded machine (1,024 lost some, and the call hung).
 * ~200 bytes of gateway memory each at most.
 */
export const MAX_WAITING_SENDS = 65_536;
const noop = (): void => undefined;
/** Characters of a non-JSON-RPC stdout line shown in the log. */
const PREVIEW_CHARS = 200;
/** How long the child gets after stdin closes, and again after SIGTERM, before the next step. */
export const DEFAULT_GRACE_MS = 1_000;
/** The reaper's own SIGTERM grace for the server's descendants: half the gateway's, so it finishes before the SIGKILL. */
const reaperGraceMs = (graceMs: number) => Math.max(50, Math.floor(graceMs / 2));
/** After the child exits, how long its pipes may stay open (a grandchild holding them) before they are cut. */
const PIPE_GRACE_MS = 500;
const DROP_REPORT_MS = 1_000;

const REAPER_NAME = 'gatehouse-reaper';

/**
 * Splits a byte stream into lines of at most `maxLineBytes` without holding
 * more: a longer line is reported once it ends, by its size and the first
 * `keepBytes` and last ID_PROBE_BYTES of it; what lies between is never kept.
 */
export class LineReader {
  private parts: Buffer[] = [];
  private size = 0;
  private head: Buffer | undefined;
  private tail: Buffer = Buffer.alloc(0);

  constructor(
    private readonly maxLineBytes: number,
    private readonly keepBytes: number,
    private readonly onLine: (line: Buffer) => void,
    private readonly onOversize: (bytes: number, head: Buffer, tail: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      this.take(chunk.subarray(start, nl === -1 ? chunk.length : nl));
      if (nl === -1) return;
      this.endLine();
      start = nl + 1;
    }
  }

  /** Forgets the line under way; returns how many bytes of it had arrived. */
  discard(): number {
    const n = this.size;
    this.reset();
    return n;
  }

  private take(piece: Buffer): void {
    if (piece.length === 0) return;
    this.size += piece.length;
    if (this.head === undefined) {
      if (this.size <= this.maxLineBytes) {
        this.parts.push(piece);
        return;
      }
      this.parts.push(piece);
      this.head = Buffer.from(firstBytes(this.parts, this.keepBytes));
      this.parts = [];
    }
    this.tail = lastBytes(this.tail, piece, ID_PROBE_BYTES);
  }

  private endLine(): void {
    const { size, head, parts, tail } = this;
    this.reset();
    if (head !== undefined) this.onOversize(size, head, tail);
    else if (size > 0) this.onLine(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size));
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.head = undefined;
    this.tail = Buffer.alloc(0);
  }
}

function firstBytes(parts: Buffer[], n: number): Buffer {
  const picked: Buffer[] = [];
  let have = 0;
  for (const p of parts) {
    if (have >= n) break;
    picked.push(p.subarray(0, n - have));
    have += Math.min(p.length, n - have);
  }
  return Buffer.concat(picked, have);
}

/** The last `n` bytes of `prev` followed by `piece`, as a copy (never a view that pins a large chunk). */
function lastBytes(prev: Buffer, piece: Buffer, n: number): Buffer {
  if (piece.length >= n) return Buffer.from(piece.subarray(piece.length - n));
  const joined = Buffer.concat([prev, piece]);
  return Buffer.from(joined.subarray(Math.max(0, joined.length - n)));
}

const ID_VALUE = String.raw`(-?\d{1,20}(?![\d.eE])|"(?:[^"\\]|\\.){0,256}")`;
/** `{"id":…` or `{"jsonrpc":"2.0","id":…` at the start: the top-level id. */
const HEAD_ID = new RegExp(String.raw`^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*${ID_VALUE}\s*[,}]`);
/** `…"id":5}` at the end (the SDK's own order: result, jsonrpc, id): the last key of the top-level object. */
const TAIL_ID = new RegExp(String.raw`"id"\s*:\s*${ID_VALUE}\s*\}\s*$`);

/**
 * The id of a JSON-RPC message from the first and last bytes of its line, if
 * it stands as the first key (after "jsonrpc") or as the last one; otherwise
 * undefined (then the call it answered times out).
 */
export function requestIdOf(head: Buffer, tail: Buffer): RequestId | undefined {
  const m = HEAD_ID.exec(head.toString('utf8')) ?? TAIL_ID.exec(tail.toString('utf8'));
  if (!m?.[1]) return undefined;
  try {
    const id: unknown = JSON.parse(m[1]);
    return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A token bucket over bytes of log output (burst: one second's worth). What it
 * refuses is counted and reported once per DROP_REPORT_MS while drops go on.
 */
export class LogBudget {
  private tokens: number;
  private last: number;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly report: (droppedBytes: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  /** Whether `bytes` may be logged now; if not, they are counted as dropped. */
  take(bytes: number): boolean {
    this.refill();
    // A line larger than the whole bucket passes when the bucket is full, and leaves it in debt.
    if (this.tokens >= Math.min(bytes, this.perSecond)) {
      this.tokens -= bytes;
      return true;
    }
    this.drop(bytes);
    return false;
  }

  exhausted(): boolean {
    this.refill();
    return this.tokens < 1;
  }

  drop(bytes: number): void {
    if (bytes <= 0) return;
    this.dropped += bytes;
    if (!this.timer) {
      this.timer = setInterval(() => this.flush(), DROP_REPORT_MS);
      this.timer.unref();
    }
  }

  /** Reports what was dropped since the last report (the timer stops once nothing is). */
  flush(): void {
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.report(n);
      return;
    }
    this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.dropped > 0) this.flush();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
  }
}

/** The reaper binary, when built and usable here (Linux only: PR_SET_CHILD_SUBREAPER). */
export function reaperPath(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const path = join(packageRoot(), 'native', 'build', REAPER_NAME);
  return isExecutable(path) ? path : undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * `command` as spawn would find it (a path against `cwd`, a bare name on the
 * child's PATH), so that a missing command fails the start as node's own
 * spawn would ("spawn X ENOENT"), not as an early exit of the reaper.
 */
export function findCommand(command: string, env: Record<string, string>, cwd: string): string {
  if (command.includes('/')) {
    const p = isAbsolute(command) ? command : resolve(cwd, command);
    if (isExecutable(p)) return p;
  } else {
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue;
      const p = resolve(cwd, dir, command);
      if (isExecutable(p)) return p;
    }
  }
  throw Object.assign(new Error(`spawn ${command} ENOENT`), { code: 'ENOENT', path: command });
}

let warnedNoReaper = false;

export interface StdioServer {
  command: string;
  args: readonly string[];
  /** The child's whole environment (nothing of the gateway's is added). */
  env: Record<string, string>;
  cwd: string;
}

export interface StdioTransportOptions {
  connector: Pick<StdioConnector, 'name' | 'limits'>;
  log: Logger;
  /** Grace after closing stdin, and again after SIGTERM; tests shorten it. */
  graceMs?: number;
  /** The reaper to run the server under; `null` for none (default: the built one, if any). */
  reaper?: string | null;
  /** Called once when the transport is closed (a confined server's egress socket goes with it). */
  onFinish?: () => void;
}

/** A stdio MCP server as a process group (see the file comment). Implements the SDK's Transport. */
export class StdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  private child: ChildProcess | undefined;
  private readonly limits: UpstreamLimits;
  private readonly log: Logger;
  private readonly graceMs: number;
  private readonly reaper: string | undefined;
  private readonly onFinish: (() => void) | undefined;
  private readonly noReaperWanted: boolean;
  private readonly budget: LogBudget;
  private readonly maxLineBytes: number;
  private readonly stdoutLines: LineReader;
  private readonly stderrLines: LineReader;
  private exited: Promise<void> | undefined;
  private closed = false;
  /** Messages read but not yet handed on: at most MESSAGES_PER_TURN go per event-loop turn (see queue). */
  private readonly inbox: Array<() => void> = [];
  private inboxHead = 0;
  private delivering: NodeJS.Immediate | undefined;
  /** Senders waiting for stdin to drain (see send). */
  private drainWaiters: Array<() => void> = [];
  /** Messages handed on at once in this turn (no backlog): the first MESSAGES_PER_TURN cost no deferral. */
  private turnCount = 0;
  private turnReset: NodeJS.Immediate | undefined;

  constructor(
    private readonly server: StdioServer,
    opts: StdioTransportOptions,
  ) {
    this.limits = limitsOf(opts.connector);
    this.log = opts.log;
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
    this.reaper = opts.reaper === null ? undefined : (opts.reaper ?? reaperPath());
    this.onFinish = opts.onFinish;
    this.noReaperWanted = opts.reaper === null;
    this.budget = new LogBudget(this.limits.stderrBytesPerSecond, (droppedBytes) =>
      this.log.warn({ droppedBytes, limitBytesPerSecond: this.limits.stderrBytesPerSecond }, 'upstream output over its log limit (limits.stderrBytesPerSecond); dropped'),
    );
    this.maxLineBytes = this.limits.resultBytes + LINE_OVERHEAD_BYTES;
    this.stdoutLines = new LineReader(
      this.maxLineBytes,
      ID_PROBE_BYTES,
      (l) => this.queue(() => this.onStdoutLine(l)),
      (n, h, t) => this.queue(() => this.onStdoutOversize(n, h, t)),
    );
    this.stderrLines = new LineReader(STDERR_LINE_BYTES, STDERR_LINE_BYTES, (l) => this.onStderrLine(l), (n, h) => this.onStderrOversize(n, h));
  }

  /** The child's pid (the reaper's, when the server runs under it); it leads its own process group. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error('StdioTransport already started');
    const { args, env, cwd } = this.server;
    const command = findCommand(this.server.command, env, cwd);
    // `reaper: null` is a caller's choice (a confined server: the launcher reaps it), not a missing build.
    if (!this.reaper && !this.noReaperWanted && process.platform === 'linux' && !warnedNoReaper) {
      warnedNoReaper = true;
      this.log.warn(`${REAPER_NAME} is not built (run: npm run build): a stdio server's processes that leave its process group (setsid) are not stopped with it`);
    }
    const [file, argv] = this.reaper ? [this.reaper, ['--parent', String(process.pid), '--grace-ms', String(reaperGraceMs(this.graceMs)), '--', command, ...args]] : [command, [...args]];
    const child = spawn(file, argv, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true, shell: false, windowsHide: true });
    this.child = child;
    await new Promise<void>((resolveSpawn, reject) => {
      child.once('spawn', () => {
        child.off('error', reject);
        resolveSpawn();
      });
      child.once('error', reject);
    });
    child.on('error', (e) => this.onerror?.(e));
    child.stdin?.on('error', (e) => this.onerror?.(e));
    child.stdout?.on('error', (e) => this.onerror?.(e));
    child.stderr?.on('error', (e) => this.onerror?.(e));
    child.stdout?.on('data', (chunk: Buffer) => this.stdoutLines.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.onStderr(chunk));
    this.exited = new Promise((resolveExit) => child.once('exit', () => void this.onExit(child).then(resolveExit)));
  }

  /**
   * A server that does not read its stdin gets no more than one line's worth
   * (or MAX_WAITING_SENDS messages, answers to its own pings included) queued
   * for it, not the gateway's memory. The senders that met backpressure wait
   * on one shared drain: a listener each made the close after a flood of tiny
   * answers quadratic (seconds to minutes of event loop).
   */
  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolveSend, reject) => {
      const stdin = this.child?.stdin;
      if (this.closed || !stdin || stdin.destroyed) return reject(new Error('Not connected'));
      if (stdin.writableLength > this.maxLineBytes || this.drainWaiters.length >= MAX_WAITING_SENDS) {
        return reject(new Error(`the upstream is not reading its stdin (${stdin.writableLength} bytes in ${this.drainWaiters.length} messages waiting for it)`));
      }
      if (stdin.write(serializeMessage(message))) return resolveSend();
      this.drainWaiters.push(resolveSend);
      if (this.drainWaiters.length > 1) return;
      const drained = () => {
        stdin.off('drain', drained);
        stdin.off('close', drained);
        const waiters = this.drainWaiters;
        this.drainWaiters = [];
        for (const w of waiters) w();
      };
      stdin.once('drain', drained);
      stdin.once('close', drained);
    });
  }

  /**
   * MCP stdio shutdown (spec 2025-11-25, lifecycle §shutdown): close stdin, wait,
   * SIGTERM, wait, SIGKILL, here to the whole process group.
   */
  async close(): Promise<void> {
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) {
      this.finish();
      return;
    }
    child.stdin?.end();
    if (await settlesWithin(exited, this.graceMs)) return;
    signalGroup(child, 'SIGTERM');
    if (await settlesWithin(exited, this.graceMs)) return;
    signalGroup(child, 'SIGKILL');
    await exited;
  }

  /**
   * The child exited: its group goes too (a grandchild holding stdout would
   * otherwise keep the connector "ready" with every call timing out), then
   * the pipes get PIPE_GRACE_MS to deliver what is still in them.
   */
  private async onExit(child: ChildProcess): Promise<void> {
    signalGroup(child, 'SIGTERM');
    const streams = [child.stdout, child.stderr].filter((s) => s !== null && !s.closed);
    const ended = Promise.all(streams.map((s) => new Promise((r) => s?.once('close', r))));
    await settlesWithin(ended, PIPE_GRACE_MS);
    signalGroup(child, 'SIGKILL');
    for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy();
    this.finish();
  }

  /**
   * Fairness between upstreams: a server flooding its stdout (200,000
   * notifications) would otherwise have every line of a 64 KiB chunk parsed in
   * one turn of the event loop, turn after turn, while other agents' requests
   * wait. At most MESSAGES_PER_TURN messages are handed on per turn; while
   * more wait, stdout is paused (the flood waits in the pipe, then in the
   * server, not in the gateway's memory).
   */
  private queue(handle: () => void): void {
    if (this.inboxHead === this.inbox.length && this.turnCount < MESSAGES_PER_TURN) {
      this.turnCount++;
      this.turnReset ??= setImmediate(() => {
        this.turnReset = undefined;
        this.turnCount = 0;
      });
      handle();
      return;
    }
    this.inbox.push(handle);
    this.child?.stdout?.pause();
    this.delivering ??= setImmediate(() => this.deliver());
  }

  private deliver(count = MESSAGES_PER_TURN): void {
    this.delivering = undefined;
    const end = Math.min(this.inbox.length, this.inboxHead + count);
    while (this.inboxHead < end) {
      const handle = this.inbox[this.inboxHead] as () => void;
      this.inbox[this.inboxHead++] = noop;
      handle();
    }
    if (this.inboxHead < this.inbox.length) {
      this.delivering = setImmediate(() => this.deliver());
      return;
    }
    this.inbox.length = 0;
    this.inboxHead = 0;
    if (!this.closed) this.child?.stdout?.resume();
  }

  private finish(): void {
    if (this.closed) return;
    // What the server wrote before it went (results of calls in flight) is handed on before the close.
    clearImmediate(this.delivering);
    clearImmediate(this.turnReset);
    this.deliver(Number.POSITIVE_INFINITY);
    this.closed = true;
    this.stdoutLines.discard();
    this.stderrLines.discard();
    this.budget.stop();
    this.onFinish?.();
    this.onclose?.();
  }

  private onStdoutLine(line: Buffer): void {
    const text = line.toString('utf8').replace(/\r$/, '');
    if (text.trim() === '') return;
    let parsed: ReturnType<typeof JSONRPCMessageSchema.safeParse>;
    try {
      parsed = JSONRPCMessageSchema.safeParse(JSON.parse(text));
    } catch {
      return this.notJsonRpc(text, line.length);
    }
    if (!parsed.success) return this.notJsonRpc(text, line.length);
    try {
      this.onmessage?.(parsed.data);
    } catch (e) {
      this.onerror?.(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private notJsonRpc(text: string, bytes: number): void {
    if (!this.budget.take(Math.min(bytes, PREVIEW_CHARS * 4))) return;
    this.log.warn({ stdout: escapeText(preview(text)), bytes }, 'upstream wrote a line on stdout that is not a JSON-RPC message; ignored');
  }

  /**
   * A line over the limit: discarded, and the request it answers (when its id
   * is the first or last key) fails naming the size. Any other shape of line
   * leaves that call to its timeout.
   */
  private onStdoutOversize(bytes: number, head: Buffer, tail: Buffer): void {
    const limit = this.limits.resultBytes;
    const id = requestIdOf(head, tail);
    if (this.budget.take(256)) {
      this.log.warn({ bytes, limit, ...(id !== undefined ? { id } : {}) }, `upstream sent a message over its size limit (limits.resultBytes); discarded${id === undefined ? ' (no id at either end: its call will time out)' : ''}`);
    }
    if (id === undefined) return;
    const message = `its answer is ${bytes} bytes, over the limit of ${limit} bytes (limits.resultBytes); the gateway discarded it`;
    try {
      this.onmessage?.({ jsonrpc: '2.0', id, error: { code: ErrorCode.InternalError, message, data: { gatehouse: 'RESULT_TOO_LARGE', bytes, limit } } });
    } catch (e) {
      this.onerror?.(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** stderr is always read (a full pipe would block the child); with the budget spent, whole chunks are counted and skipped. */
  private onStderr(chunk: Buffer): void {
    if (this.budget.exhausted()) {
      const nl = chunk.lastIndexOf(10);
      if (nl >= 0) {
        this.budget.drop(this.stderrLines.discard() + nl + 1);
        chunk = chunk.subarray(nl + 1);
      }
    }
    this.stderrLines.push(chunk);
  }

  /** A line costs its bytes and its newline. */
  private onStderrLine(line: Buffer): void {
    const text = line.toString('utf8').replace(/\r$/, '');
    if (text.trim() === '') return;
    if (this.budget.take(line.length + 1)) this.log.info({ stderr: escapeText(text) }, 'upstream stderr');
  }

  /** The start of a long line is logged (budget permitting), the rest counted as dropped. */
  private onStderrOversize(bytes: number, head: Buffer): void {
    this.budget.drop(bytes - head.length);
    if (this.budget.take(head.length + 1)) this.log.info({ stderr: escapeText(head.toString('utf8')), truncatedFrom: bytes }, 'upstream stderr');
  }
}

function preview(text: string): string {
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
}

/** SIGTERM/SIGKILL to the child's whole process group (it leads it: spawned detached). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is empty already.
  }
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

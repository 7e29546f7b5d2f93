/**
 * What the reliability suite counts: this process's children, its sockets
 * (from /proc, not from our own bookkeeping), its heap after a forced GC, and
 * the audit log (every file, in chain order, checked with the audit module's
 * own verifier).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { checkpointKeyPath, loadCheckpointKey } from '../../src/audit/checkpoint.js';
import { listAuditFiles } from '../../src/audit/files.js';
import { verifyAudit, type VerifyReport } from '../../src/audit/verify.js';
import { ROOT, spawnListening, type HttpFixture } from '../helpers/gateway.js';

export const FIXTURES = join(ROOT, 'test', 'fixtures');
export const FAULTY_HTTP = join(FIXTURES, 'faulty-http.mjs');
export const SLOW_START = join(FIXTURES, 'slow-start.mjs');

/** Whether the load test runs at the size the issue names (100 sessions x 200 calls). */
export const LOAD_FULL = process.env.GATEHOUSE_LOAD_FULL === '1';

interface ProcStat {
  pid: number;
  ppid: number;
  cmdline: string;
}

function readStat(pid: string): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields after it start at the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return { pid: Number(pid), ppid: Number(rest[1]), cmdline };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Every live descendant of `root` (default: this process), with its command line. Zombies count: they are leaks too. */
export function descendants(root = process.pid): ProcStat[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(readStat)
    .filter((s): s is ProcStat => s !== undefined);
  const out: ProcStat[] = [];
  const parents = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        out.push(p);
        grew = true;
      }
    }
  }
  return out;
}

/** Inodes of this process's open sockets. */
export function socketInodes(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m?.[1]) out.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

export interface TcpSocket {
  localPort: number;
  remotePort: number;
  /** Kernel state, hex: 01 ESTABLISHED, 0A LISTEN, 08 CLOSE_WAIT, ... */
  state: string;
}

/** This process's TCP sockets (IPv4 and IPv6), from /proc/net/tcp*. */
export function tcpSockets(): TcpSocket[] {
  const mine = socketInodes();
  const out: TcpSocket[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || !mine.has(cols[9] ?? '')) continue;
      const port = (addr: string | undefined) => parseInt((addr ?? ':0').split(':')[1] ?? '0', 16);
      out.push({ localPort: port(cols[1]), remotePort: port(cols[2]), state: cols[3] ?? '' });
    }
  }
  return out;
}

/** Open TCP connections of this process that the server on `port` accepted (not its listener). */
export function acceptedOn(port: number): number {
  return tcpSockets().filter((s) => s.localPort === port && s.state !== '0A').length;
}

let gcFn: (() => void) | undefined;
/** A full GC (the flag can be set at run time; the function comes from a fresh context). */
export function forceGc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) gcFn();
}

export async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 50));
    forceGc();
  }
  return process.memoryUsage().heapUsed;
}

/** Every audit record, all files in chain order. */
export function auditRecords(stateDir: string): Array<Record<string, unknown>> {
  return listAuditFiles(join(stateDir, 'audit')).flatMap((f) =>
    readFileSync(f.path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

/** The audit module's verifier, with the checkpoint key (signatures checked). */
export async function verifyChain(stateDir: string): Promise<VerifyReport> {
  const { publicKey } = await loadCheckpointKey(checkpointKeyPath(stateDir));
  return verifyAudit(join(stateDir, 'audit'), { publicKey });
}

export interface AgentClient {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** Ends the MCP session (DELETE) and closes this client's own connection pool. */
  close(): Promise<void>;
}

/**
 * An SDK client with its own connection pool, so that after `close()` no
 * socket of ours stays open to the gateway: what is left open is the gateway's.
 */
export async function agentClient(url: string, token: string, name = 'reliability'): Promise<AgentClient> {
  const dispatcher = new Agent({ keepAliveTimeout: 10_000 });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
    fetch: ((u: string | URL, init?: RequestInit) => undiciFetch(u, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch,
  });
  const client = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  return {
    client,
    transport,
    async close() {
      await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
      await dispatcher.close().catch(() => undefined);
    },
  };
}

export const text = (r: unknown): string => ((r as CallToolResult).content[0] as { text?: string } | undefined)?.text ?? '';
export const errCode = (r: unknown): unknown => ((r as CallToolResult)._meta as Record<string, unknown> | undefined)?.['gatehouse/error'];

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * `p`, or a failure naming `what` after `ms`: a hang guard, not a speed check. Make `ms`
 * generous (far above the work on a loaded machine), so that only a real hang trips it.
 */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang guard: ${what} took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** An HTTP fixture process (see spawnListening in test/helpers/gateway.ts). */
export type Spawned = HttpFixture;
export { spawnListening };

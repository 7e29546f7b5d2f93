/**
 * A real gateway, started in-process with `startGateway`, over temporary
 * registry/policies/state folders written from plain objects.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stringify } from 'yaml';
import { silentLogger } from '../../src/log.js';
import { startGateway, type GatewayRuntimeOptions, type RunningGateway } from '../../src/app/gateway.js';
import { mintToken } from '../../src/server/tokens.js';
import { tempDir } from './tmp.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE = join(ROOT, 'test', 'fixtures', 'upstream.mjs');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** Allows every tool to every agent, except `echo` to "mallory" (a deny rule wins) and `env`, hidden from her. */
export const TEST_POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    // Conditional on an argument, so echo stays listed for mallory: a tool denied in every case is hidden, and unknown when called.
    { id: 'mallory-may-not-echo', match: { agent: 'mallory', tool: '*__echo', args: { text: { maxLength: 1_000_000 } } }, effect: 'deny', message: 'mallory may not echo' },
    { id: 'mallory-never-env', match: { agent: 'mallory', tool: '*__env' }, effect: 'deny' },
    { id: 'fixture-tools', match: { tool: '*' }, effect: 'allow' },
  ],
};

export type ConnectorSpec = Record<string, unknown> & { name: string };

/** A stdio connector running the fixture, logging calls to `callLog`. */
export function stdioFixture(name: string, callLog: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): ConnectorSpec {
  // Unconfined unless `extra` says otherwise: the call log lies where a confined server may not write (see withSandbox).
  // Unpinned too: tests change the fixture's tool list at will; pinning has its own tests (test/tools, test/broker/tool-pinning.int.test.ts).
  return { name, kind: 'stdio', command: 'node', args: [FIXTURE, 'stdio'], env: { FIXTURE_CALL_LOG: callLog, ...env }, sandbox: 'off', pin: 'off', ...extra };
}

export { tempDir };

/**
 * The fixtures write their call logs and tallies next to the test's state
 * directory, which a confined server may not see: a stdio connector written
 * by these helpers runs unconfined unless the test says `sandbox:` itself.
 * Confinement has its own tests (test/sandbox/confined-connector.int.test.ts).
 * Likewise tool pinning is off unless the spec sets `pin:`.
 */
function withSandbox(c: ConnectorSpec): ConnectorSpec {
  const confined = c.kind === 'stdio' && !('sandbox' in c) ? { ...c, sandbox: 'off' } : c;
  // Unpinned unless the test says `pin:` itself: these tests change tool lists at will (pinning: test/broker/tool-pinning.int.test.ts).
  return c.kind !== 'inference' && !('pin' in c) ? { ...confined, pin: 'off' } : confined;
}

/** Writes one YAML file per connector and the policy (or several policy files). */
export function writeConfig(root: string, connectors: readonly ConnectorSpec[], policy: object | Record<string, object> = TEST_POLICY, policyIsFiles = false) {
  const dirs = { registry: join(root, 'registry'), policies: join(root, 'policies'), state: join(root, 'state') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  for (const c of connectors) writeFileSync(join(dirs.registry, `${c.name}.yaml`), stringify(withSandbox(c)));
  const files: Record<string, object> = policyIsFiles ? (policy as Record<string, object>) : { 'test.yaml': policy };
  for (const [f, p] of Object.entries(files)) writeFileSync(join(dirs.policies, f), stringify(p));
  return dirs;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body as JSON, or the JSON-RPC messages of an SSE body. */
  json: () => unknown;
  messages: () => unknown[];
}

export interface RawRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** A string/Buffer is sent with Content-Length; an array of chunks is streamed chunked (no Content-Length). */
  body?: string | Buffer | Buffer[];
}

/** A hand-made HTTP request (node:http, so Host and every other header are ours to set). */
export function rawRequest(port: number, req: RawRequest): Promise<RawResponse> {
  return new Promise((resolvePromise, reject) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...req.headers };
    const r = httpRequest({ host: '127.0.0.1', port, method: req.method ?? 'POST', path: req.path ?? '/mcp', headers, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolvePromise({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as unknown,
          messages: () =>
            String(res.headers['content-type']).startsWith('text/event-stream')
              ? text
                  .split('\n')
                  .filter((l) => l.startsWith('data:'))
                  .map((l) => JSON.parse(l.slice(5)) as unknown)
              : [JSON.parse(text) as unknown],
        });
      });
      res.on('error', reject);
    });
    r.on('error', (e: NodeJS.ErrnoException) => {
      // The server may answer (413) and close before the whole body was sent.
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') return;
      reject(e);
    });
    if (Array.isArray(req.body)) {
      for (const c of req.body) r.write(c);
      r.end();
    } else {
      r.end(req.body);
    }
  });
}

export const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

export function initializeBody(id: number | string = 1) {
  return { jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
}

export interface TestGateway {
  gw: RunningGateway;
  url: string;
  port: number;
  dirs: { registry: string; policies: string; state: string };
  root: string;
  callLog: string;
  mint(agent: string, ttlMs?: number): Promise<string>;
  /** A connected SDK client for `agent` (closed by `close()`). */
  client(agent: string, options?: ConstructorParameters<typeof Client>[1]): Promise<Client>;
  raw(req: RawRequest & { token?: string | null }): Promise<RawResponse>;
  /** Opens a session by hand: initialize + notifications/initialized. */
  openSession(token: string): Promise<string>;
  calls(): Array<Record<string, unknown>>;
  audit(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Builds the connectors given the call-log path. */
  connectors: (callLog: string) => ConnectorSpec[];
  policy?: object;
  runtime?: Partial<Omit<GatewayRuntimeOptions, 'dirs'>>;
}

export function readJsonLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export async function startTestGateway(opts: TestGatewayOptions): Promise<TestGateway> {
  const root = tempDir();
  const callLog = join(root, 'calls.jsonl');
  const dirs = writeConfig(root, opts.connectors(callLog), opts.policy ?? TEST_POLICY);
  const gw = await startGateway({ dirs, port: 0, logger: silentLogger, backoffMs: 20, upstreamWaitMs: 20_000, ...opts.runtime });
  const clients: Client[] = [];
  const mint = async (agent: string, ttlMs = 3_600_000) => (await mintToken(gw.keys, agent, ttlMs)).token;
  const t: TestGateway = {
    gw,
    url: gw.url,
    port: gw.port,
    dirs,
    root,
    callLog,
    mint,
    async client(agent, options) {
      const token = await mint(agent);
      const transport = new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
      const client = new Client({ name: 'gatehouse-test', version: '1.0.0' }, options ?? { capabilities: {} });
      await client.connect(transport);
      clients.push(client);
      return client;
    },
    raw(req) {
      const headers: Record<string, string> = { ...req.headers };
      if (req.token !== undefined && req.token !== null) headers.authorization = `Bearer ${req.token}`;
      return rawRequest(gw.port, { ...req, headers });
    },
    async openSession(token) {
      const init = await t.raw({ token, headers: MCP_HEADERS, body: JSON.stringify(initializeBody()) });
      const sid = init.headers['mcp-session-id'];
      if (init.status !== 200 || typeof sid !== 'string') throw new Error(`initialize failed: ${init.status} ${init.text}`);
      const done = await t.raw({
        token,
        headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      });
      if (done.status !== 202) throw new Error(`initialized failed: ${done.status} ${done.text}`);
      return sid;
    },
    calls: () => readJsonLines(callLog),
    audit: () => readJsonLines(join(dirs.state, 'audit', 'audit.jsonl')),
    async close() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await gw.close(5_000);
      rmSync(root, { recursive: true, force: true });
    },
  };
  return t;
}

/** Polls `check` until it returns a value other than undefined/false (for effects that emit no event, e.g. a line in a file). */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

export interface HttpFixture {
  url: string;
  port: number;
  child: ChildProcess;
  close(): Promise<void>;
}

/** Runs an HTTP fixture script (it prints "LISTENING <port>") in a child process; resolves once it listens. */
export function spawnListening(script: string, args: string[], env: Record<string, string> = {}): Promise<HttpFixture> {
  const child = spawn(process.execPath, [script, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const onExit = (code: number | null) => reject(new Error(`${script} exited (${code}) before listening: ${out}`));
    child.once('exit', onExit);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /LISTENING (\d+)/.exec(out);
      if (!m) return;
      child.off('exit', onExit);
      const port = Number(m[1]);
      resolvePromise({
        url: `http://127.0.0.1:${port}/mcp`,
        port,
        child,
        close: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGKILL');
          }),
      });
    });
  });
}

/** Runs test/fixtures/upstream.mjs as a Streamable HTTP server. */
export function spawnHttpFixture(env: Record<string, string> = {}, port = 0): Promise<HttpFixture> {
  return spawnListening(FIXTURE, ['http', String(port)], env);
}

/** Whether a process id is alive (signal 0). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

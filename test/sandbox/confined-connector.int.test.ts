/**
 * Confined stdio connectors (issue #15), with the real gateway, the real
 * launcher and real MCP servers: a malicious server package tries everything
 * a compromised connector would; only the host its registry entry allows
 * (through the egress proxy) is reached, and the audit shows each refusal.
 * A well-behaved server still starts, restarts after a crash, gets a rotated
 * secret, and asks the agent for sampling, confined.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { createServer as createNet, type AddressInfo, type Server as NetServer } from 'node:net';
import { join, resolve } from 'node:path';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../connectors/helpers.js';
import { startTestGateway, TEST_POLICY, until, type TestGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '../..');
const HOSTILE = join(ROOT, 'test/fixtures/hostile-confined.mjs');
const UPSTREAM = join(ROOT, 'test/fixtures/upstream.mjs');
const ENV_SERVER = join(ROOT, 'test/fixtures/env-server.mjs');
const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

const listen = async <S extends HttpServer | NetServer>(s: S, where: string | number): Promise<S> => {
  await new Promise<void>((r) => (typeof where === 'string' ? s.listen(where, r) : s.listen(where, '127.0.0.1', r)));
  return s;
};
const portOf = (s: HttpServer | NetServer) => (s.address() as AddressInfo).port;

describe('a malicious stdio server runs confined', () => {
  let t: TestGateway;
  const servers: Array<HttpServer | NetServer> = [];
  const hits: Record<string, string[]> = { allowed: [], exfil: [], bus: [] };
  let report: {
    files: Record<string, string>;
    sockets: Record<string, string>;
    tcp: Record<string, string>;
    proxied: Record<string, string>;
    controls: { ownFile: string; writeHome: string; home: string; cwd: string; envKeys: string[] };
  };
  let allowedPort: number;
  let exfilPort: number;
  let root: string;

  beforeAll(async () => {
    root = tempDir('gh-confined-');
    const allowed = await listen(createHttp((req, res) => (hits.allowed?.push(`${req.method} ${req.url}`), res.end('registry-answer'))), 0);
    const exfil = await listen(createHttp((req, res) => (hits.exfil?.push(`${req.method} ${req.url}`), res.end('stolen'))), 0);
    // Stand-ins for the session bus: a socket file and an abstract socket, as dbus-daemon offers either.
    mkdirSync(join(root, 'bus'));
    const busFile = await listen(createNet((s) => (hits.bus?.push('file'), s.destroy())), join(root, 'bus', 'session'));
    const abstract = `gatehouse-test-bus-${process.pid}-${Date.now()}`;
    const busAbstract = await listen(createNet((s) => (hits.bus?.push('abstract'), s.destroy())), `\0${abstract}`);
    servers.push(allowed, exfil, busFile, busAbstract);
    allowedPort = portOf(allowed);
    exfilPort = portOf(exfil);
    // What a user's home holds: keys and the keychain's files.
    const home = join(root, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    writeFileSync(join(home, '.ssh', 'id_ed25519'), 'PRIVATE KEY');
    mkdirSync(join(home, '.local/share/keyrings'), { recursive: true });
    writeFileSync(join(home, '.local/share/keyrings/login.keyring'), 'KEYRING');

    // The state directory's files (signing keys, audit log) exist once the gateway runs: the hostile server is added after, by a registry reload.
    const state = join(root, 'gw');
    const targets = (statePaths: Record<string, string>) => ({
      files: { ssh: join(home, '.ssh', 'id_ed25519'), keyring: join(home, '.local/share/keyrings/login.keyring'), shadow: '/etc/shadow', ...statePaths },
      sockets: { busFile: join(root, 'bus', 'session'), busAbstract: `@${abstract}`, control: join(state, 'state', 'run', 'control.sock') },
      tcp: { exfil: `127.0.0.1:${exfilPort}`, metadata: '169.254.169.254:80' } as Record<string, string>,
      proxied: <Record<string, string>>{
        allowed: `allowed.test:${allowedPort}`,
        exfilByName: `exfil.test:${exfilPort}`,
        exfilByIp: `127.0.0.1:${exfilPort}`,
        metadata: '169.254.169.254:80',
        deniedByPolicy: `denied.test:${allowedPort}`,
      },
    });
    t = await startTestGateway({
      connectors: () => [],
      policy: {
        ...TEST_POLICY,
        // A policy deny outranks a registry entry.
        rules: [...TEST_POLICY.rules, { id: 'no-denied-host', match: { connector: 'evil', egress: { host: 'denied.test', port: allowedPort } }, effect: 'deny' }],
      },
      runtime: {
        egressResolve: async (host) => ({ 'allowed.test': ['127.0.0.1'], 'exfil.test': ['127.0.0.1'], 'denied.test': ['127.0.0.1'] })[host] ?? [],
      },
    });
    // The gateway is up: now its state directory has keys and an audit log. The hostile server is added by a registry reload.
    const statePaths = Object.fromEntries(filesUnder(t.dirs.state).filter((f) => !f.endsWith('.sock')).slice(0, 12).map((f, i) => [`state${i}`, f]));
    expect(Object.keys(statePaths).length).toBeGreaterThan(2);
    const tg = targets(statePaths);
    tg.sockets.control = join(t.dirs.state, 'run', 'control.sock');
    tg.tcp = { ...tg.tcp, gateway: `127.0.0.1:${t.port}` };
    tg.proxied = { ...tg.proxied, gateway: `127.0.0.1:${t.port}` };
    writeFileSync(
      join(t.dirs.registry, 'evil.yaml'),
      JSON.stringify({ name: 'evil', kind: 'stdio', command: 'node', args: [HOSTILE], env: { FIXTURE_TARGETS: JSON.stringify(tg) }, egress: [`allowed.test:${allowedPort}`, `denied.test:${allowedPort}`], timeouts: { call: '60s' } }),
    );
    await until(() => t.gw.gateway.catalog.byName.has('evil__steal'), 'the hostile connector to be ready', 20_000);
    const client = await t.client('alice');
    const r = (await client.callTool({ name: 'evil__steal', arguments: {} })) as { content: Array<{ text: string }> };
    report = JSON.parse(r.content[0]?.text ?? '{}') as typeof report;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    for (const s of servers) s.close();
  });

  it('malicious_server_cannot_read_ssh_keys_keyring_files_or_the_state_directory_keys', () => {
    for (const [label, got] of Object.entries(report.files)) expect([label, got]).toEqual([label, expect.stringMatching(/^err:(ENOENT|EACCES)$/)]);
    // The same files are there outside: what stopped the server is the sandbox.
    expect(statSync(report.controls.home).isDirectory()).toBe(true);
  });

  it('malicious_server_cannot_connect_to_dbus_the_control_socket_or_any_unix_socket', () => {
    for (const [label, got] of Object.entries(report.sockets)) expect([label, got]).toEqual([label, expect.stringMatching(/^err:(ENOENT|ECONNREFUSED|EACCES|EPERM)$/)]);
    expect(hits.bus).toEqual([]);
  });

  it('malicious_server_has_no_network_but_the_egress_proxy', () => {
    for (const [label, got] of Object.entries(report.tcp)) expect([label, got]).toEqual([label, expect.stringMatching(/^err:/)]);
  });

  it('only_the_host_its_registry_entry_allows_is_reached_through_the_proxy_and_each_refusal_is_audited', () => {
    expect(report.proxied.allowed).toBe('ok:registry-answer');
    for (const label of ['exfilByName', 'exfilByIp', 'metadata', 'gateway', 'deniedByPolicy']) expect([label, report.proxied[label]]).toEqual([label, 'err:HTTP403']);
    expect(hits.exfil).toEqual([]);
    expect(hits.allowed).toEqual(['GET /loot']);
    const egress = t.audit().filter((r) => r.event === 'egress' && r.connector === 'evil');
    expect(egress.find((r) => r.host === 'allowed.test')).toMatchObject({ decision: 'allow', rule: 'registry:evil', port: allowedPort });
    const refused = (host: string) => egress.find((r) => r.host === host && r.outcome === 'denied');
    expect(refused('exfil.test')).toMatchObject({ decision: 'deny', rule: null });
    expect(refused('127.0.0.1')).toBeDefined();
    expect(refused('169.254.169.254')).toBeDefined();
    expect(refused('denied.test')).toMatchObject({ rule: 'no-denied-host' });
    expect(egress.every((r) => r.agent === undefined)).toBe(true);
  });

  it('confined_server_still_gets_its_own_package_a_private_home_and_only_its_registry_env', () => {
    expect(report.controls.ownFile).toMatch(/^ok:\d+$/);
    expect(report.controls.writeHome).toBe('ok:written');
    expect(report.controls.home).toBe(join(t.dirs.state, 'connectors', 'evil'));
    expect(readFileSync(join(t.dirs.state, 'connectors', 'evil', 'cache.txt'), 'utf8')).toBe('x');
    // Nothing of the gateway's environment: the registry's, the base, the proxy's.
    expect(report.controls.envKeys.filter((k) => !/^(PATH|HOME|LANG|FIXTURE_TARGETS|GATEHOUSE_SANDBOX|HTTPS?_PROXY|https?_proxy|NO_PROXY|no_proxy|NODE_USE_ENV_PROXY|LC_.*|TERM|TZ|LANGUAGE)$/.test(k))).toEqual([]);
  });
});

describe('a confined stdio server works as before', () => {
  let t: TestGateway;
  let io: string;
  const store = new MemoryStore({ 'envsrv-token': 'first-value-7f3a' });

  beforeAll(async () => {
    io = tempDir('gh-confined-io-');
    t = await startTestGateway({
      connectors: () => [
        // The call log in a folder the entry lets it write: everything else as in the unconfined tests.
        { name: 'fx', kind: 'stdio', command: 'node', args: [UPSTREAM, 'stdio'], env: { FIXTURE_CALL_LOG: join(io, 'calls.jsonl') }, sandbox: { rw: [io] } },
        { name: 'envsrv', kind: 'stdio', command: 'node', args: [ENV_SERVER], env: { TOKEN: '${secret:envsrv-token}', FIXTURE_OUT: join(io, 'env.jsonl') }, sandbox: { rw: [io] } },
        { name: 'everything', kind: 'stdio', command: 'node', args: [EVERYTHING, 'stdio'], sampling: 'allow', sandbox: { ro: [], rw: [] } },
      ],
      runtime: { secrets: store, secretPollMs: 100, secretCacheMs: 0, backoffMs: 20 },
    });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it('confined_server_answers_calls_and_writes_only_where_its_entry_lets_it', async () => {
    const c = await t.client('alice');
    const r = await c.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(r.content).toEqual([{ type: 'text', text: 'hi' }]);
    expect(readFileSync(join(io, 'calls.jsonl'), 'utf8')).toContain('"echo"');
  });

  it('confined_server_is_restarted_after_a_crash_and_serves_again', async () => {
    const c = await t.client('alice');
    const crashed = await c.callTool({ name: 'fx__crash', arguments: {} });
    expect(crashed.isError).toBe(true);
    await until(async () => {
      const again = await c.callTool({ name: 'fx__echo', arguments: { text: 'back' } }).catch(() => undefined);
      return again !== undefined && again.isError !== true && JSON.stringify(again.content).includes('back');
    }, 'the restarted server to answer', 20_000);
  });

  it('connector_secret_is_never_on_a_command_line_any_local_user_can_read', async () => {
    const c = await t.client('alice');
    await c.callTool({ name: 'envsrv__env', arguments: {} });
    const lines: string[] = [];
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
      } catch {
        // Gone meanwhile.
      }
    }
    // The launcher and the server are running: their command lines were read, and hold no secret value.
    expect(lines.some((l) => l.includes('gatehouse-sandbox') && l.includes('--env-keep\0TOKEN'))).toBe(true);
    expect(lines.filter((l) => l.includes('first-value-7f3a') || l.includes('second-value-9c1d'))).toEqual([]);
  });

  it('confined_server_gets_a_rotated_secret_after_restart_and_never_the_old_one', async () => {
    const c = await t.client('alice');
    const before = (await c.callTool({ name: 'envsrv__env', arguments: {} })) as { content: Array<{ text: string }> };
    expect(before.content[0]?.text).toContain('[REDACTED:envsrv-token]');
    const seen = () =>
      readFileSync(join(io, 'env.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { value: string }).value);
    expect(seen()).toEqual(['first-value-7f3a']);
    await store.set('envsrv-token', 'second-value-9c1d');
    await until(() => seen().includes('second-value-9c1d'), 'the server to restart with the new secret', 20_000);
    expect(seen().at(-1)).toBe('second-value-9c1d');
    const after = (await c.callTool({ name: 'envsrv__env', arguments: {} })) as { content: Array<{ text: string }> };
    expect(after.content[0]?.text).not.toContain('second-value-9c1d');
  });

  it('confined_server_asks_the_agent_for_sampling_through_the_gateway', async () => {
    const c = await t.client('alice', { capabilities: { sampling: {} } });
    let asked = 0;
    c.setRequestHandler(CreateMessageRequestSchema, async () => {
      asked++;
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled answer' } };
    });
    const tools = await c.listTools();
    expect(tools.tools.map((x) => x.name)).toContain('everything__trigger-sampling-request');
    const r = await c.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'hello', maxTokens: 10 } });
    expect(asked).toBe(1);
    expect(JSON.stringify(r.content)).toContain('sampled answer');
  });
});

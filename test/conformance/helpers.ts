/** Shared by the conformance and pass-through tests. */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, ROOT, spawnListening, type ConnectorSpec, type HttpFixture } from '../helpers/gateway.js';

export const CONFORMANCE_FIXTURE = join(ROOT, 'test', 'fixtures', 'conformance-upstream.mjs');
/** Node >= 22 for the conformance suite, installed by scripts/test-deps.sh (outside node_modules). */
export const NODE22 = join(ROOT, '.cache', 'node22', 'node_modules', 'node', 'bin', 'node');
export const CONFORMANCE_CLI = join(ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

/** The conformance fixture as a stdio connector. */
export function stdioConformance(name: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): ConnectorSpec {
  return { name, kind: 'stdio', command: 'node', args: [CONFORMANCE_FIXTURE, 'stdio'], env, ...extra };
}

/** Runs the conformance fixture as a Streamable HTTP server; resolves once it listens. */
export function spawnConformanceFixture(env: Record<string, string> = {}): Promise<HttpFixture> {
  return spawnListening(CONFORMANCE_FIXTURE, ['http', '0'], env);
}

/** The same tools on the MCP SDK v2: a 2026-07-28 server (it also answers 2025-11-25 through the SDK's fallback). */
export const CONFORMANCE_FIXTURE_V2 = join(ROOT, 'test', 'fixtures', 'conformance-upstream-v2.mjs');

export function stdioConformanceV2(name: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): ConnectorSpec {
  return { name, kind: 'stdio', command: 'node', args: [CONFORMANCE_FIXTURE_V2, 'stdio'], env, ...extra };
}

export function spawnConformanceFixtureV2(env: Record<string, string> = {}): Promise<HttpFixture> {
  return spawnListening(CONFORMANCE_FIXTURE_V2, ['http', '0'], env);
}

const AGENT = join(ROOT, 'test', 'fixtures', 'conformance-agent.mjs');

export interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}
export interface AgentReport {
  ms: number;
  runs: Array<{ name: string; code: number | null; signal: string | null; tail: string }>;
  scenarios: Record<string, Check[]>;
}
export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  report: AgentReport | undefined;
  audit: Array<Record<string, unknown>>;
}

const POLICY = { version: 1, default: 'deny', rules: [{ id: 'conformance-fixture', match: { tool: '*' }, effect: 'allow' }] };

/**
 * One `gatehouse run` (in-process gateway) with the conformance CLI as the
 * agent: `agentArgs` are conformance-agent.mjs's (BASELINE|- [--flag=value...] [SCENARIO...]).
 */
export async function conformanceRun(base: string, connector: ConnectorSpec, agentArgs: string[], timeoutMs: number): Promise<Outcome> {
  const dirs = { registry: join(base, 'registry'), policies: join(base, 'policies'), state: join(base, 'state'), ws: join(base, 'ws') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  writeFileSync(join(dirs.registry, `${connector.name}.yaml`), stringify(connector));
  writeFileSync(join(dirs.policies, 'conformance.yaml'), stringify(POLICY));
  const args = ['run', '--agent', 'conformance', '--workspace', dirs.ws, '--ro', ROOT, '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state, '--no-mcp-config'];
  const command = [NODE22, AGENT, CONFORMANCE_CLI, ...agentArgs];
  const started = Date.now();
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--', ...command], { env: { PATH: process.env.PATH, HOME: base }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs - 5_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  let report: AgentReport | undefined;
  try {
    report = JSON.parse(last) as AgentReport;
  } catch {
    report = undefined;
  }
  const auditDir = join(dirs.state, 'audit');
  const audit = readdirSync(auditDir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) => readFileSync(join(auditDir, f), 'utf8').split('\n'))
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...r, ms: Date.now() - started, report, audit };
}


/**
 * Runs one built-in connector in-process (the same MCP server the gateway
 * links to, without the gateway) against a simulator, so that a contract
 * test can call every tool and the `connector test` probe and then read
 * what the simulator recorded.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { builtinTransport, probeBuiltin, type BuiltinConnectorConfig, type BuiltinRuntime } from '../../../src/connectors/index.js';
import { GithubConnectorSchema, JiraConnectorSchema, SlackConnectorSchema } from '../../../src/registry/builtin-kinds.js';
import { silentLogger } from '../../../src/log.js';
import type { Recorded } from '../sim/base.js';
import type { Description, Exchange } from './openapi.js';

export interface Driven {
  call(tool: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** `gatehouse connector test`: resolves to its message, or to the error's message. */
  probe(): Promise<string>;
  close(): Promise<void>;
}

const SCHEMAS = { github: GithubConnectorSchema, slack: SlackConnectorSchema, jira: JiraConnectorSchema } as const;

export async function drive(config: Record<string, unknown> & { kind: keyof typeof SCHEMAS }, secrets: Record<string, string>): Promise<Driven> {
  const c = SCHEMAS[config.kind].parse(config) as BuiltinConnectorConfig;
  const rt: BuiltinRuntime = {
    render: async (template) =>
      template.replace(/\$\{secret:([^}]+)\}/g, (_, name: string) => {
        const v = secrets[name];
        if (v === undefined) throw new Error(`test secret ${name} is not set`);
        return v;
      }),
    logger: silentLogger,
    connectTimeoutMs: 5_000,
    callTimeoutMs: 10_000,
  };
  const client = new Client({ name: 'contract-tests', version: '1.0.0' });
  await client.connect(await builtinTransport(c, rt));
  return {
    call: async (tool, args = {}) => (await client.callTool({ name: tool, arguments: args })) as CallToolResult,
    probe: () => probeBuiltin(c, rt, AbortSignal.timeout(10_000)).catch((e: unknown) => (e instanceof Error ? e.message : String(e))),
    close: () => client.close(),
  };
}

export function exchanges(recorded: readonly Recorded[]): Exchange[] {
  return recorded.map((r) => ({ method: r.method, path: r.path, query: r.query, contentType: r.contentType, body: r.body, response: r.response }));
}

/** Every violation of every description by the recorded exchanges, prefixed with the description's name. */
export function violations(descriptions: readonly Description[], recorded: readonly Recorded[]): string[] {
  const xs = exchanges(recorded);
  return descriptions.flatMap((d) => xs.flatMap((x) => d.check(x).map((line) => `[${d.name}] ${line}`)));
}

import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ProviderApi } from './api.js';
import { probeGithub } from './github/probe.js';
import { githubApi, GITHUB_TOOLS } from './github/tools.js';
import { jiraApi, JIRA_TOOLS, probeJira } from './jira/tools.js';
import { credentialTemplates, type BuiltinConnectorConfig, type BuiltinKind } from '../registry/builtin-kinds.js';
import type { BuiltinRuntime } from './builtin-runtime.js';
import { createToolServer, linkedTransport } from './server.js';
import { probeSlack, slackApi, SLACK_TOOLS } from './slack/tools.js';
import { toolOf, type ToolSpec } from './tool.js';

export { isBuiltinKind, BUILTIN_KINDS, credentialTemplates, type BuiltinConnectorConfig, type BuiltinKind } from '../registry/builtin-kinds.js';
export type { BuiltinRuntime } from './builtin-runtime.js';

const TOOLS: Record<BuiltinKind, readonly ToolSpec<never>[]> = {
  github: GITHUB_TOOLS as readonly ToolSpec<never>[],
  slack: SLACK_TOOLS as readonly ToolSpec<never>[],
  jira: JIRA_TOOLS as readonly ToolSpec<never>[],
};

/** A built-in kind's tools as MCP lists them (static: no credential, no network). */
export function builtinTools(kind: BuiltinKind): Tool[] {
  return TOOLS[kind].map((t) => toolOf(t as ToolSpec<unknown>));
}

interface Bound {
  api: { base: ProviderApi };
  server: () => Server;
  probe: (signal: AbortSignal) => Promise<string>;
}

function bind(c: BuiltinConnectorConfig, rt: BuiltinRuntime): Bound {
  switch (c.kind) {
    case 'github': {
      const api = githubApi(c, rt);
      return { api, server: () => createToolServer({ name: c.name, tools: GITHUB_TOOLS, api, logger: rt.logger }), probe: (s) => probeGithub(api, s) };
    }
    case 'slack': {
      const api = slackApi(c, rt);
      return { api, server: () => createToolServer({ name: c.name, tools: SLACK_TOOLS, api, logger: rt.logger }), probe: (s) => probeSlack(api, s) };
    }
    case 'jira': {
      const api = jiraApi(c, rt);
      return { api, server: () => createToolServer({ name: c.name, tools: JIRA_TOOLS, api, logger: rt.logger }), probe: (s) => probeJira(api, s) };
    }
  }
}

/** Renders every credential once and throws SECRET_MISSING if one is not set (the value is dropped at once). */
export async function checkCredentials(c: BuiltinConnectorConfig, rt: Pick<BuiltinRuntime, 'render'>): Promise<void> {
  for (const t of credentialTemplates(c)) await rt.render(t, { connector: c.name, where: 'credential' });
}

/**
 * The gateway side of a built-in connector: an in-process MCP server linked
 * to the returned transport. The credential is rendered again per request.
 */
export async function builtinTransport(c: BuiltinConnectorConfig, rt: BuiltinRuntime): Promise<Transport> {
  await checkCredentials(c, rt);
  return linkedTransport(bind(c, rt).server());
}

/** One harmless authenticated request (`gatehouse connector test`); throws ProviderError or SECRET_MISSING. */
export async function probeBuiltin(c: BuiltinConnectorConfig, rt: BuiltinRuntime, signal: AbortSignal): Promise<string> {
  const b = bind(c, rt);
  try {
    return await b.probe(signal);
  } finally {
    await b.api.base.close();
  }
}

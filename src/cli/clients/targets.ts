import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The MCP clients `gatehouse client add` can set up: where each keeps its
 * user-level MCP configuration, and the entry it reads for a Streamable HTTP
 * server with a bearer token. Formats as each client documents them:
 *   Claude Code     ~/.claude.json                      mcpServers.NAME {type:"http", url, headers}
 *   Cursor          ~/.cursor/mcp.json                  mcpServers.NAME {url, headers}
 *   VS Code         <user config>/Code/User/mcp.json    servers.NAME {type:"http", url, headers}
 *   Codex           $CODEX_HOME/config.toml             [mcp_servers.NAME] url, http_headers (an inline bearer_token is refused by Codex)
 *   Claude Desktop  <app config>/Claude/claude_desktop_config.json: stdio only, so mcp-remote bridges to the URL
 */
export const CLIENT_NAMES = ['claude-code', 'cursor', 'vscode', 'codex', 'claude-desktop'] as const;
export type ClientName = (typeof CLIENT_NAMES)[number];

export interface ClientTarget {
  name: ClientName;
  /** As the product calls itself, for messages ("restart Cursor"). */
  label: string;
  format: 'json' | 'toml';
  /** The user-level configuration file. */
  file: string;
  /** Where the entry goes: [table, server name]. */
  keyPath: [string, string];
  entry: Record<string, unknown>;
}

export interface TargetInput {
  url: string;
  token: string;
  /** The server's name in the client (default "gatehouse"). */
  serverName: string;
  env: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
}

export function isClientName(s: string): s is ClientName {
  return (CLIENT_NAMES as readonly string[]).includes(s);
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
}

/** The per-user application data folder: where VS Code and Claude Desktop keep their settings. */
function appConfigDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  if (platform === 'darwin') return join(home(env), 'Library', 'Application Support');
  if (platform === 'win32') return env.APPDATA ?? join(home(env), 'AppData', 'Roaming');
  return env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(home(env), '.config');
}

function isLoopback(url: string): boolean {
  const h = new URL(url).hostname;
  return h === 'localhost' || h === '[::1]' || /^127\./.test(h);
}

export function clientTarget(name: ClientName, i: TargetInput): ClientTarget {
  const platform = i.platform ?? process.platform;
  const bearer = `Bearer ${i.token}`;
  switch (name) {
    case 'claude-code':
      return {
        name,
        label: 'Claude Code',
        format: 'json',
        file: join(home(i.env), '.claude.json'),
        keyPath: ['mcpServers', i.serverName],
        entry: { type: 'http', url: i.url, headers: { Authorization: bearer } },
      };
    case 'cursor':
      return {
        name,
        label: 'Cursor',
        format: 'json',
        file: join(home(i.env), '.cursor', 'mcp.json'),
        keyPath: ['mcpServers', i.serverName],
        entry: { url: i.url, headers: { Authorization: bearer } },
      };
    case 'vscode':
      return {
        name,
        label: 'VS Code',
        format: 'json',
        file: join(appConfigDir(i.env, platform), 'Code', 'User', 'mcp.json'),
        keyPath: ['servers', i.serverName],
        entry: { type: 'http', url: i.url, headers: { Authorization: bearer } },
      };
    case 'codex':
      return {
        name,
        label: 'Codex',
        format: 'toml',
        file: join(i.env.CODEX_HOME !== undefined && i.env.CODEX_HOME !== '' ? i.env.CODEX_HOME : join(home(i.env), '.codex'), 'config.toml'),
        keyPath: ['mcp_servers', i.serverName],
        entry: { url: i.url, http_headers: { Authorization: bearer } },
      };
    case 'claude-desktop':
      // The token goes in env, not args: args are visible to every local user in ps, and mcp-remote
      // documents "Authorization:${VAR}" (no space) because some clients split arguments on spaces.
      return {
        name,
        label: 'Claude Desktop',
        format: 'json',
        file: join(appConfigDir(i.env, platform), 'Claude', 'claude_desktop_config.json'),
        keyPath: ['mcpServers', i.serverName],
        entry: {
          command: 'npx',
          args: ['-y', 'mcp-remote', i.url, '--header', 'Authorization:${GATEHOUSE_AUTH_HEADER}', ...(i.url.startsWith('http:') && !isLoopback(i.url) ? ['--allow-http'] : [])],
          env: { GATEHOUSE_AUTH_HEADER: bearer },
        },
      };
  }
}

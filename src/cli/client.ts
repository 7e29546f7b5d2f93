import { Exit, GatehouseError } from '../errors.js';
import { gatewayRunning } from '../server/control-client.js';
import { loadTokenKeys, mintToken } from '../server/tokens.js';
import { requireDuration } from '../config/duration.js';
import { esc, escapeText, jsonLine } from '../terminal.js';
import { CLIENT_NAMES, clientTarget, isClientName } from './clients/targets.js';
import { dirsFrom, handle, subcommand, type CommandModule, type Io } from './command.js';
import { invocation } from './invocation.js';

/** A client's token lasts long enough not to break the next morning; `token revoke` ends it sooner. */
export const CLIENT_TTL = '30d';
export const DEFAULT_SERVER_NAME = 'gatehouse';

const DESCRIPTION = `Sets up an MCP client to use this gateway: mints an agent token and writes
the client's own MCP configuration, merged into its file (every other entry
and key stays; written with mode 0600, since it holds the token).
CLIENT is one of:
  claude-code      ~/.claude.json (user scope, as "claude mcp add --scope user")
  cursor           ~/.cursor/mcp.json
  vscode           the user mcp.json of VS Code (servers.NAME, type http)
  codex            ~/.codex/config.toml ($CODEX_HOME), [mcp_servers.NAME]
  claude-desktop   claude_desktop_config.json, via "npx -y mcp-remote" (stdio)
A file that does not parse, or a symbolic link at the file's name, is refused
and left as it is. Revoke a client's token: gatehouse token revoke --agent NAME`;

export const clientCommand: CommandModule = (program, io) => {
  const client = program.command('client').summary('set up an MCP client (Claude Code, Cursor, VS Code, Codex, Claude Desktop)');
  const add = subcommand(client, 'add <client>', "write a client's MCP configuration with the gateway URL and a fresh token")
    .description(DESCRIPTION)
    .option('--print', 'print the entry and the file it belongs in; change nothing')
    .option('--agent <name>', "agent identity that policy and audit see (default: the client's name)")
    .option('--ttl <dur>', `token lifetime (default ${CLIENT_TTL}, the most allowed); run again to renew`)
    .option('--name <name>', `the server's name in the client (default ${DEFAULT_SERVER_NAME})`)
    .option('--host <h>', "the gateway's address (default 127.0.0.1; env GATEHOUSE_HOST)")
    .option('--port <n>', "the gateway's port (default 8931; env GATEHOUSE_PORT)")
    .option('--json', 'print the result as one JSON object');
  handle<Omit<ClientAddOptions, 'client'>>(add, async (o, args) => clientAdd({ ...o, client: args[0] ?? '' }, io));
};

export interface ClientAddOptions {
  client: string;
  print?: boolean | undefined;
  agent?: string | undefined;
  ttl?: string | undefined;
  name?: string | undefined;
  host?: string | undefined;
  port?: string | undefined;
  json?: boolean | undefined;
  state?: string | undefined;
}

const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The URL a client on this machine uses for a gateway bound to host:port (a wildcard bind is reached on loopback). */
export function gatewayUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}/mcp`;
}

export async function clientAdd(o: ClientAddOptions, io: Io): Promise<number> {
  if (!isClientName(o.client)) throw new GatehouseError('USAGE', `unknown client ${JSON.stringify(o.client)}; use one of: ${CLIENT_NAMES.join(', ')}`);
  const serverName = o.name ?? DEFAULT_SERVER_NAME;
  if (!SERVER_NAME.test(serverName)) throw new GatehouseError('USAGE', `--name ${JSON.stringify(serverName)}: letters, digits, "_" and "-", at most 64 characters`);
  const portText = o.port ?? io.env.GATEHOUSE_PORT ?? '8931';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new GatehouseError('USAGE', `--port must be 1-65535, got ${JSON.stringify(portText)}`);
  const host = o.host ?? io.env.GATEHOUSE_HOST ?? '127.0.0.1';
  const url = gatewayUrl(host, port);
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  // Only a host: userinfo, a path, a query or a fragment in it would send the token to a server other than the one the URL seems to name.
  const onlyHost = parsed !== undefined && parsed.username === '' && parsed.password === '' && parsed.pathname === '/mcp' && parsed.search === '' && parsed.hash === '' && (parsed.port || '80') === String(port);
  if (!onlyHost) throw new GatehouseError('USAGE', `--host ${JSON.stringify(host)} is not a host name or address`);
  const agent = o.agent ?? o.client;
  const ttlMs = requireDuration(o.ttl ?? CLIENT_TTL, '--ttl');
  const dirs = dirsFrom({ state: o.state }, io.env);
  const t = await mintToken(await loadTokenKeys(dirs.state), agent, ttlMs);
  const target = clientTarget(o.client, { url, token: t.token, serverName, env: io.env });
  // Loaded here: the TOML parser and the file merging are this command's alone (not `serve`'s memory).
  const { install, snippet } = await import('./clients/install.js');
  const expiresAt = t.expiresAt.toISOString();
  const cli = invocation();
  // Commands we print must reach the same state directory (its key signs the token).
  const st = o.state !== undefined ? ` --state ${o.state}` : '';
  if (o.print === true) {
    if (o.json === true) io.out(jsonLine({ client: target.name, file: target.file, written: false, agent, expiresAt, id: t.id, entry: { [target.keyPath[0]]: { [serverName]: target.entry } } }));
    else {
      // The snippet is ours (JSON/TOML of a URL we built and a token): printed whole so it pastes as is.
      io.out(esc`# ${target.label}: merge into ${target.file}\n` + snippet(target));
      if (target.name === 'claude-code') io.out(`\n# or let Claude Code write it:\nclaude mcp add --scope user --transport http ${serverName} ${url} --header "Authorization: Bearer ${t.token}"\n`);
      io.err(esc`token for agent "${agent}", expires ${expiresAt}, id ${t.id}\n`);
    }
    return Exit.Ok;
  }
  const r = install(target);
  const running = await gatewayRunning(dirs.state);
  if (o.json === true) {
    io.out(jsonLine({ client: target.name, file: r.file, written: true, replaced: r.replaced, agent, expiresAt, id: t.id, url, gatewayRunning: running }));
    return Exit.Ok;
  }
  io.out(
    esc`${r.replaced ? 'Replaced' : 'Added'} MCP server "${serverName}" in ${r.file} (${target.label}).\n` +
      esc`  url    ${url}\n  agent  ${agent} (token id ${t.id}, expires ${expiresAt})\n` +
      (r.commentsDropped ? '  note   the file was rewritten (the entry could not be appended): its comments were not kept\n' : '') +
      esc`Restart ${target.label} (or reload its MCP servers) to connect.\n` +
      escapeText(`Renew: ${cli} client add ${target.name}${o.agent !== undefined ? ` --agent ${agent}` : ''}${st}   Revoke: ${cli} token revoke ${t.id}${st}`) +
      '\n' +
      (running ? '' : escapeText(`No gateway is running yet; start it with: ${cli} serve${st}`) + '\n'),
  );
  return Exit.Ok;
}

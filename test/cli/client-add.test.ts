import { execFileSync, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { clientAdd, gatewayUrl, type ClientAddOptions } from '../../src/cli/client.js';
import { CLIENT_NAMES, clientTarget } from '../../src/cli/clients/targets.js';
import { loadTokenKeys, verifyToken } from '../../src/server/tokens.js';
import type { Io } from '../../src/cli/command.js';
import { runCli } from '../helpers/cli.js';
import { ROOT, tempDir } from '../helpers/gateway.js';

function setup() {
  const home = tempDir('gatehouse-client-');
  const state = join(home, 'state');
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => void out.push(s), err: (s) => void err.push(s), env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), GATEHOUSE_STATE: state }, stdin: process.stdin, isTTY: false };
  const add = (o: Omit<ClientAddOptions, 'state'>) => clientAdd({ ...o, state }, io);
  return { home, state, io, out, err, add };
}

const bearer = (h: unknown) => String(h).replace(/^Bearer /, '');

describe('gatehouse client add', () => {
  it('covers every client it names (the list under test is not empty)', () => {
    expect(CLIENT_NAMES.length).toBe(5);
  });

  it('claude-code: adds mcpServers.gatehouse {type http, url, bearer} to ~/.claude.json and keeps every other key', async () => {
    const s = setup();
    const file = join(s.home, '.claude.json');
    writeFileSync(file, JSON.stringify({ numStartups: 42, projects: { '/x': { allowedTools: ['a'] } }, mcpServers: { other: { type: 'stdio', command: 'x' } } }, null, 2));
    expect(await s.add({ client: 'claude-code' })).toBe(0);
    const j = JSON.parse(readFileSync(file, 'utf8'));
    expect(j.numStartups).toBe(42);
    expect(j.projects).toEqual({ '/x': { allowedTools: ['a'] } });
    expect(j.mcpServers.other).toEqual({ type: 'stdio', command: 'x' });
    expect(j.mcpServers.gatehouse.type).toBe('http');
    expect(j.mcpServers.gatehouse.url).toBe('http://127.0.0.1:8931/mcp');
    // The token is a real one for this state directory, for agent "claude-code".
    const v = await verifyToken(await loadTokenKeys(s.state), bearer(j.mcpServers.gatehouse.headers.Authorization));
    expect(v.agent).toBe('claude-code');
  });

  it('writes the file with mode 0600 (it holds a token), even when it was world-readable', async () => {
    const s = setup();
    const file = join(s.home, '.cursor', 'mcp.json');
    mkdirSync(join(s.home, '.cursor'));
    writeFileSync(file, '{}');
    chmodSync(file, 0o644);
    await s.add({ client: 'cursor' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // No temporary file left behind.
    expect(readdirSync(join(s.home, '.cursor'))).toEqual(['mcp.json']);
  });

  it('cursor: creates ~/.cursor/mcp.json with mcpServers.NAME {url, headers} when there is none', async () => {
    const s = setup();
    await s.add({ client: 'cursor', name: 'gh-gate', agent: 'me-cursor' });
    const j = JSON.parse(readFileSync(join(s.home, '.cursor', 'mcp.json'), 'utf8'));
    expect(Object.keys(j.mcpServers)).toEqual(['gh-gate']);
    expect(j.mcpServers['gh-gate'].url).toBe('http://127.0.0.1:8931/mcp');
    expect((await verifyToken(await loadTokenKeys(s.state), bearer(j.mcpServers['gh-gate'].headers.Authorization))).agent).toBe('me-cursor');
  });

  it('vscode: keeps comments of the JSONC user mcp.json and writes servers.NAME with type http', async () => {
    const s = setup();
    const dir = join(s.home, '.config', 'Code', 'User');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'mcp.json'), '{\n  // my servers\n  "servers": {\n    "mem": { "command": "npx", "args": ["-y", "m"] },\n  },\n  "inputs": []\n}\n');
    await s.add({ client: 'vscode', host: '0.0.0.0', port: '9000' });
    const text = readFileSync(join(dir, 'mcp.json'), 'utf8');
    expect(text).toContain('// my servers');
    expect(text).toContain('"inputs": []');
    expect(text).toMatch(/"gatehouse": \{\s+"type": "http",\s+"url": "http:\/\/127\.0\.0\.1:9000\/mcp"/);
    expect(parseJsonc(text).servers.mem).toEqual({ command: 'npx', args: ['-y', 'm'] });
  });

  it('codex: appends [mcp_servers.gatehouse] with url and http_headers, keeping comments and other tables', async () => {
    const s = setup();
    mkdirSync(join(s.home, '.codex'));
    const file = join(s.home, '.codex', 'config.toml');
    writeFileSync(file, '# my settings\nmodel = "o3"\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n');
    await s.add({ client: 'codex' });
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('# my settings\nmodel = "o3"\n')).toBe(true);
    const t = parseToml(text) as { model: string; mcp_servers: Record<string, Record<string, unknown>> };
    expect(t.model).toBe('o3');
    expect(t.mcp_servers.docs).toEqual({ command: 'docs-mcp' });
    expect(t.mcp_servers.gatehouse?.url).toBe('http://127.0.0.1:8931/mcp');
    // Codex refuses an inline bearer_token; http_headers is the field it sends as is.
    expect(t.mcp_servers.gatehouse).not.toHaveProperty('bearer_token');
    expect(bearer((t.mcp_servers.gatehouse?.http_headers as Record<string, string>).Authorization)).toMatch(/^ey/);
  });

  it('codex: a second run replaces the entry (a new token) instead of adding a duplicate table', async () => {
    const s = setup();
    await s.add({ client: 'codex' });
    const file = join(s.home, '.codex', 'config.toml');
    const first = (parseToml(readFileSync(file, 'utf8')) as any).mcp_servers.gatehouse.http_headers.Authorization;
    await s.add({ client: 'codex' });
    const text = readFileSync(file, 'utf8');
    expect(text.match(/\[mcp_servers\.gatehouse\]/g)?.length).toBe(1);
    expect((parseToml(text) as any).mcp_servers.gatehouse.http_headers.Authorization).not.toBe(first);
    expect(s.out.join('')).toContain('Replaced MCP server "gatehouse"');
  });

  it('codex: an inline mcp_servers table (where appending a [table] would be invalid TOML) is merged by rewriting, keeping every key, and says comments were dropped', async () => {
    const s = setup();
    mkdirSync(join(s.home, '.codex'));
    const file = join(s.home, '.codex', 'config.toml');
    writeFileSync(file, '# keep?\nmodel = "o3"\nmcp_servers = { docs = { command = "docs-mcp" } }\n');
    await s.add({ client: 'codex' });
    const t = parseToml(readFileSync(file, 'utf8')) as any;
    expect(t.model).toBe('o3');
    expect(t.mcp_servers.docs).toEqual({ command: 'docs-mcp' });
    expect(t.mcp_servers.gatehouse.url).toBe('http://127.0.0.1:8931/mcp');
    expect(s.out.join('')).toContain('its comments were not kept');
  });

  it('codex: honours CODEX_HOME', () => {
    const t = clientTarget('codex', { url: 'http://127.0.0.1:1/mcp', token: 't', serverName: 'g', env: { HOME: '/h', CODEX_HOME: '/c' } });
    expect(t.file).toBe('/c/config.toml');
  });

  it('claude-desktop: bridges through npx mcp-remote with the token in env, not in the arguments (ps shows arguments)', async () => {
    const s = setup();
    await s.add({ client: 'claude-desktop' });
    const j = JSON.parse(readFileSync(join(s.home, '.config', 'Claude', 'claude_desktop_config.json'), 'utf8'));
    const e = j.mcpServers.gatehouse;
    expect(e.command).toBe('npx');
    expect(e.args).toEqual(['-y', 'mcp-remote', 'http://127.0.0.1:8931/mcp', '--header', 'Authorization:${GATEHOUSE_AUTH_HEADER}']);
    expect(JSON.stringify(e.args)).not.toMatch(/ey[A-Za-z0-9_-]{10,}/);
    expect(e.env.GATEHOUSE_AUTH_HEADER).toMatch(/^Bearer ey/);
  });

  it('claude-desktop and vscode: macOS and Windows locations', () => {
    const i = { url: 'http://127.0.0.1:1/mcp', token: 't', serverName: 'g', env: { HOME: '/Users/a', APPDATA: 'C:/Users/a/AppData/Roaming' } };
    expect(clientTarget('claude-desktop', { ...i, platform: 'darwin' }).file).toBe('/Users/a/Library/Application Support/Claude/claude_desktop_config.json');
    expect(clientTarget('vscode', { ...i, platform: 'darwin' }).file).toBe('/Users/a/Library/Application Support/Code/User/mcp.json');
    expect(clientTarget('vscode', { ...i, platform: 'win32' }).file).toMatch(/^C:\/Users\/a\/AppData\/Roaming.Code.User.mcp\.json$/);
  });

  it('refuses a file that does not parse, names file:line:col, and leaves it byte for byte', async () => {
    const s = setup();
    const file = join(s.home, '.claude.json');
    const broken = '{\n  "numStartups": 3,\n  "mcpServers": {\n}';
    writeFileSync(file, broken);
    await expect(s.add({ client: 'claude-code' })).rejects.toThrow(/\.claude\.json:4:2: not valid JSON .*the file was not changed/s);
    expect(readFileSync(file, 'utf8')).toBe(broken);
  });

  it('refuses a TOML file that does not parse and leaves it as it is', async () => {
    const s = setup();
    mkdirSync(join(s.home, '.codex'));
    const file = join(s.home, '.codex', 'config.toml');
    writeFileSync(file, 'model = "o3"\nmodel = "o4"\n');
    await expect(s.add({ client: 'codex' })).rejects.toThrow(/config\.toml:2:\d+: not valid TOML/);
    expect(readFileSync(file, 'utf8')).toBe('model = "o3"\nmodel = "o4"\n');
  });

  it('symlink attack: refuses to write a token through a link at the config file name', async () => {
    const s = setup();
    const victim = join(s.home, 'victim.json');
    writeFileSync(victim, '{"keep": true}');
    mkdirSync(join(s.home, '.cursor'));
    symlinkSync(victim, join(s.home, '.cursor', 'mcp.json'));
    await expect(s.add({ client: 'cursor' })).rejects.toThrow(/symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('{"keep": true}');
  });

  it('refuses a dangling symlink too (it would create the file where the link points)', async () => {
    const s = setup();
    symlinkSync(join(s.home, 'elsewhere.json'), join(s.home, '.claude.json'));
    await expect(s.add({ client: 'claude-code' })).rejects.toThrow(/symbolic link/);
    expect(existsSync(join(s.home, 'elsewhere.json'))).toBe(false);
  });

  it('FIFO attack: a named pipe at the config file name is refused at once, not waited on forever', async () => {
    const s = setup();
    mkdirSync(join(s.home, '.cursor'));
    const fifo = join(s.home, '.cursor', 'mcp.json');
    execFileSync('mkfifo', [fifo]);
    // A plain open() for reading blocks until someone writes to the pipe, and blocks the whole process:
    // the read runs in a child that is killed if it hangs.
    const script = `import(${JSON.stringify(pathToFileURL(join(ROOT, 'src', 'cli', 'clients', 'config-file.ts')).href)}).then((m) => { try { m.readConfig(${JSON.stringify(fifo)}); console.log('read'); } catch (e) { console.log(e.message); } })`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL' });
    expect(r.signal, 'readConfig hung on the FIFO').toBeNull();
    expect(r.stdout).toMatch(/is not a regular file/);
    await expect(s.add({ client: 'cursor' })).rejects.toThrow(/not a regular file/);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });

  it('refuses when the server table is not an object (it would be replaced)', async () => {
    const s = setup();
    writeFileSync(join(s.home, '.claude.json'), '{"mcpServers": []}');
    await expect(s.add({ client: 'claude-code' })).rejects.toThrow(/"mcpServers" is not a JSON object/);
  });

  it('--print changes nothing and prints the entry, the file it belongs in, and the claude mcp add command', async () => {
    const s = setup();
    expect(await s.add({ client: 'claude-code', print: true })).toBe(0);
    expect(existsSync(join(s.home, '.claude.json'))).toBe(false);
    const out = s.out.join('');
    expect(out).toContain(`merge into ${join(s.home, '.claude.json')}`);
    expect(out).toMatch(/"Authorization": "Bearer ey/);
    expect(out).toMatch(/claude mcp add --scope user --transport http gatehouse http:\/\/127\.0\.0\.1:8931\/mcp --header "Authorization: Bearer ey/);
  });

  it('--print for codex prints a TOML table', async () => {
    const s = setup();
    await s.add({ client: 'codex', print: true });
    expect(s.out.join('')).toMatch(/\[mcp_servers\.gatehouse\]\nurl = "http:\/\/127\.0\.0\.1:8931\/mcp"/);
  });

  it('rejects an unknown client, a bad --name, --port and --agent with the flag named', async () => {
    const s = setup();
    await expect(s.add({ client: 'emacs' })).rejects.toThrow(/unknown client "emacs"; use one of: claude-code, cursor, vscode, codex, claude-desktop/);
    await expect(s.add({ client: 'cursor', name: 'a b' })).rejects.toThrow(/--name/);
    await expect(s.add({ client: 'cursor', port: '99999' })).rejects.toThrow(/--port/);
    await expect(s.add({ client: 'cursor', agent: 'bad agent' })).rejects.toThrow(/invalid agent name/);
    await expect(s.add({ client: 'cursor', ttl: '90d' })).rejects.toThrow(/--ttl/);
  });

  it('--host smuggling: a host with userinfo, a path, a query or a fragment (the token would go to another server than the URL seems to name) is refused, nothing written', async () => {
    const s = setup();
    for (const host of ['127.0.0.1@evil.example', 'evil.example#127.0.0.1', 'evil.example/x?', 'evil.example:80', 'a b']) {
      await expect(s.add({ client: 'cursor', host }), host).rejects.toThrow(/--host/);
    }
    expect(existsSync(join(s.home, '.cursor', 'mcp.json'))).toBe(false);
    // Names and addresses still work.
    for (const host of ['gw.internal', '10.0.0.5', 'fd00::2', '::1']) expect(await s.add({ client: 'cursor', host }), host).toBe(0);
  });

  it('gatewayUrl: a wildcard bind is reached on loopback; IPv6 in brackets', () => {
    expect(gatewayUrl('0.0.0.0', 8931)).toBe('http://127.0.0.1:8931/mcp');
    expect(gatewayUrl('::', 1)).toBe('http://[::1]:1/mcp');
    expect(gatewayUrl('fd00::2', 1)).toBe('http://[fd00::2]:1/mcp');
  });
});

describe('gatehouse client add (the CLI)', () => {
  it('is a command: writes the file and exits 0; an unknown client exits 2 naming the choices', async () => {
    const home = tempDir('gatehouse-client-cli-');
    const env = { HOME: home, GATEHOUSE_STATE: join(home, 'state') };
    const ok = await runCli(['client', 'add', 'cursor', '--agent', 'cli-cursor'], { env });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('Added MCP server "gatehouse"');
    const j = JSON.parse(readFileSync(join(home, '.cursor', 'mcp.json'), 'utf8'));
    expect((await verifyToken(await loadTokenKeys(join(home, 'state')), bearer(j.mcpServers.gatehouse.headers.Authorization))).agent).toBe('cli-cursor');
    const bad = await runCli(['client', 'add', 'emacs'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown client "emacs"; use one of: claude-code/);
  });
});

import { isBuiltinKind } from '../registry/builtin-kinds.js';
import { ProviderError } from '../connectors/errors.js';
import { addFromTemplate, listTemplates } from '../connectors/templates.js';
import { Exit, GatehouseError, errorMessage, exitCodeFor } from '../errors.js';
import { silentLogger } from '../log.js';
import { loadRegistry } from '../registry/load.js';
import { isProvider, type ToolConnector } from '../registry/schema.js';
import { bindSecrets } from '../secrets/bindings.js';
import { KeychainStore } from '../secrets/keychain.js';
import { StoreResolver } from '../secrets/resolve.js';
import type { SecretStore } from '../secrets/store.js';
import { dirname } from 'node:path';
import type { Dirs } from '../config/paths.js';
import { dirsFrom, handle, subcommand, table, type CommandModule, type DirFlags, type Io } from './command.js';
import { addGenericCommand, withGenericAdd, type GenericFlags } from './connector-add.js';
import { addLoginCommand, isOAuthConnector } from './connector-login.js';
import { oauthListing } from '../secrets/oauth/status.js';
import { invocation } from './invocation.js';
import { esc, escapeText, jsonLine } from '../terminal.js';

const TEST_HELP = `
What it does per kind:
  github   GET /rate_limit: the token's kind (classic, fine-grained, app
           installation, OAuth, user-to-server), a classic token's scopes
  slack    auth.test (bot, team, scopes)
  jira     GET /rest/api/3/myself (Cloud) or /rest/api/2/myself (Data Center);
           which one: deployment in the registry, the site name, or serverInfo
  http / stdio   starts the MCP server and lists its tools
Exit 0 when it works, 1 when the service refused (credential, scope, not found)
or a secret is missing, 3 when the service or the keychain could not be reached.`;

interface AddOptions {
  name?: string;
  secret?: string;
  baseUrl?: string;
  email?: string;
  force?: boolean;
}

/** `gatehouse connector`, with the secret store it reads (tests pass one in memory). */
export function connectorCommandWith(openStore: () => SecretStore): CommandModule {
  return (program, io) => {
    const connector = subcommand(program, 'connector', 'add, list and test connectors (GitHub, Slack, Jira, MCP servers)').description(
      'Registers the services agents may use, and checks them.',
    );

    const add = subcommand(connector, 'add <template> [command...]', 'write <registry>/<name>.yaml from a template, a command or a URL')
      .option('--name <name>', "connector name (default: the template's); tools are exposed as NAME__<tool>")
      .option('--secret <name>', "keychain secret for the credential (default: the template's, renamed after --name)")
      .option('--base-url <url>', 'service URL (GitHub Enterprise: https://HOST/api/v3; Jira: https://SITE.atlassian.net)')
      .option('--email <addr>', 'Jira Cloud: the account email that owns the API token')
      .option('--force', 'overwrite an existing file')
      .addHelpText('after', () => `\nTemplates:\n${templateList()}`);
    withGenericAdd(add);
    handle<AddOptions & GenericFlags>(add, async (o, [template, ...command]) => (o.url !== undefined || command.length > 0 ? addGenericCommand(template ?? '', command, o, io, openStore()) : addConnector(template ?? '', o, io)));

    const list = subcommand(connector, 'list', 'each connector: kind, ready or why not, tools exposed')
      .description(
        "Lists the registry's connectors, computed offline: whether each one's secrets are set in the keychain, and the tools a built-in connector exposes. MCP upstreams (stdio, http) list their tools once served (\"connector test\" starts one briefly).",
      )
      .option('--json', 'one JSON array');
    handle<{ json?: boolean }>(list, async (o) => listConnectors(o, io, openStore));

    const test = subcommand(connector, 'test <name>', 'one harmless authenticated request to the service')
      .option('--json', 'print {"ok","connector","kind","detail"} as JSON')
      .addHelpText('after', TEST_HELP);
    handle<{ json?: boolean }>(test, async (o, [name]) => testConnector(name ?? '', o, io, openStore));

    addLoginCommand(connector, io, openStore);
  };
}

export const connectorCommand: CommandModule = connectorCommandWith(() => new KeychainStore());

function templateList(): string {
  const t = listTemplates();
  const w = Math.max(...t.map((x) => x.name.length));
  return t.map((x) => `  ${x.name.padEnd(w)}  ${x.summary}`).join('\n');
}

async function addConnector(template: string, values: DirFlags & AddOptions, io: Io): Promise<number> {
  const dirs = dirsFrom(values, io.env);
  const r = addFromTemplate({
    template,
    registryDir: dirs.registry,
    ...(values.name !== undefined ? { name: values.name } : {}),
    ...(values.secret !== undefined ? { secret: values.secret } : {}),
    ...(values.baseUrl !== undefined ? { baseUrl: values.baseUrl } : {}),
    ...(values.email !== undefined ? { email: values.email } : {}),
    ...(values.force === true ? { force: true } : {}),
  });
  const cli = invocation();
  const steps = r.secrets.map((s) => `  ${cli} secret set ${s}`);
  const todo: string[] = [];
  const c = r.connector;
  if (isOAuthConnector(c) && c.oauth.clientId?.startsWith('YOUR-') === true) todo.push(`  set oauth.clientId in ${r.file} (your OAuth app's client ID; see the comment at its top)`);
  if (isOAuthConnector(c)) steps.push(`  ${cli} connector login ${c.name}${c.oauth.per === 'agent' ? ' --for AGENT' : ''}`);
  if (c.kind === 'jira' && 'email' in c.auth && /@example\.com$/.test(c.auth.email)) todo.push(`  edit auth.email in ${r.file} (or pass --email)`);
  if (c.kind === 'jira' && /example\.com|your-site/.test(c.baseUrl)) todo.push(`  set baseUrl in ${r.file} (or pass --base-url)`);
  io.out(
    esc`Wrote ${r.file} (connector "${c.name}", kind ${c.kind}).` +
      '\nNext:\n' +
      [...todo, ...steps, `  ${cli} connector test ${c.name}`].map((l) => escapeText(l)).join('\n') +
      esc`\nThen give its tools a policy (reads allow, writes ask) and restart "${cli} serve".\n`,
  );
  return Exit.Ok;
}

async function listConnectors(values: DirFlags & { json?: boolean }, io: Io, openStore: () => SecretStore): Promise<number> {
  const dirs = dirsFrom(values, io.env);
  const registry = loadRegistry(dirs.registry);
  const store = openStore();
  // Loaded here: it brings every built-in connector's tools, which no other connector subcommand needs.
  const { connectorStatus } = await import('../connectors/status.js');
  const rows = [];
  for (const c of registry.connectors) {
    const row: Awaited<ReturnType<typeof connectorStatus>> & { oauth?: string } = await connectorStatus(c, store);
    // An oauth: connector needs its login too (src/secrets/oauth/status.ts).
    const o = isOAuthConnector(c) && row.storeError === undefined ? await oauthListing(c, store).catch(() => undefined) : undefined;
    if (o !== undefined) {
      row.oauth = o.note;
      if (row.ready && !o.loggedIn) Object.assign(row, { ready: false, reason: o.note.replace(/^oauth: /, ''), ...(o.fix !== undefined ? { fix: o.fix } : {}) });
    }
    rows.push(row);
  }
  // A store that cannot be asked makes readiness unknown: say why once, exit 3.
  const storeError = rows.find((r) => r.storeError !== undefined)?.storeError;
  const code = storeError !== undefined ? Exit.Unavailable : Exit.Ok;
  if (values.json) {
    io.out(jsonLine(rows));
    return code;
  }
  if (rows.length === 0) {
    io.out(esc`No connectors in ${dirs.registry}. Add one: gatehouse connector add github\n`);
    return Exit.Ok;
  }
  io.out(
    table(
      ['NAME', 'KIND', 'STATUS', 'TOOLS', 'FIX'],
      rows.map((r) => [r.name, r.kind, r.ready ? `ready${r.oauth !== undefined ? ` (${r.oauth})` : ''}` : `not ready: ${r.reason ?? ''}`, r.tools === null ? 'n/a until served' : String(r.tools.length), r.fix ?? '']),
    ),
  );
  if (storeError !== undefined) io.err('\n' + esc`${store.description}: ${storeError}` + '\n');
  return code;
}

function exitFor(e: unknown): number {
  if (e instanceof ProviderError) return e.kind === 'unavailable' || e.kind === 'protocol' || e.kind === 'rate_limited' ? Exit.Unavailable : Exit.Failed;
  // Anything else that is not ours (a socket error from the probe) means the service could not be reached.
  return e instanceof GatehouseError ? exitCodeFor(e) : Exit.Unavailable;
}

async function testConnector(name: string, values: DirFlags & { json?: boolean }, io: Io, openStore: () => SecretStore): Promise<number> {
  const dirs = dirsFrom(values, io.env);
  const registry = loadRegistry(dirs.registry);
  const c = registry.connectors.find((x) => x.name === name);
  if (!c) throw new GatehouseError('USAGE', `no connector "${name}" in ${dirs.registry}; see: gatehouse connector list`);
  const resolver = new StoreResolver(openStore(), { bindings: bindSecrets(registry.connectors).bindings, cacheMs: 0 });
  const report = (ok: boolean, detail: string, code: number) => {
    if (values.json) io.out(jsonLine({ ok, connector: c.name, kind: c.kind, detail }));
    // detail carries what the service or MCP server said (tool names, error text): escaped.
    else (ok ? io.out : io.err)(esc`${c.name} (${c.kind}): ${ok ? 'ok' : 'FAILED'}: ${detail}\n`);
    return code;
  };
  try {
    // The probes (upstreams, built-in connectors, inference) are loaded only by `connector test`.
    const detail = isProvider(c) ? await (await import('../inference/probe.js')).probeProvider(c, resolver) : isBuiltinKind(c.kind) ? await probeBuiltinConnector(c, resolver) : await probeMcp(c, resolver, dirs);
    return report(true, detail, Exit.Ok);
  } catch (e) {
    return report(false, e instanceof Error ? e.message : errorMessage(e), exitFor(e));
  } finally {
    resolver.close();
  }
}

async function probeBuiltinConnector(c: ToolConnector, resolver: StoreResolver): Promise<string> {
  if (!isBuiltinKind(c.kind)) throw new GatehouseError('INTERNAL', 'not a built-in');
  const [{ probeBuiltin }, { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS }] = await Promise.all([import('../connectors/index.js'), import('../upstreams/upstream.js')]);
  const timeout = c.timeouts.call ?? 20_000;
  return probeBuiltin(
    c as Parameters<typeof probeBuiltin>[0],
    { render: (t, ctx) => resolver.render(t, ctx), logger: silentLogger, connectTimeoutMs: c.timeouts.connect ?? DEFAULT_CONNECT_TIMEOUT_MS, callTimeoutMs: Math.min(timeout, DEFAULT_CALL_TIMEOUT_MS) },
    AbortSignal.timeout(timeout),
  );
}

/** Starts an MCP upstream once (initialize + tools/list with the real credential), then stops it. */
async function probeMcp(c: ToolConnector, resolver: StoreResolver, dirs: Dirs): Promise<string> {
  // Confined as the gateway runs it; the gateway's egress proxy is not here, so every connection out of it is refused.
  const [{ Upstream }, { connectorConfiner }] = await Promise.all([import('../upstreams/upstream.js'), import('../sandbox/confine-connector.js')]);
  const u = new Upstream({ connector: c, baseDir: dirname(dirs.registry), secrets: resolver, logger: silentLogger, onToolsChanged: () => undefined, backoffMs: 3_600_000, confine: connectorConfiner({ dirs }) });
  try {
    await u.start();
    const st = u.status;
    if (st.state === 'ready') return `MCP server answered; ${u.tools.length} tools (${u.tools.slice(0, 8).map((t) => t.name).join(', ')}${u.tools.length > 8 ? ', ...' : ''})`;
    if (st.state === 'not-ready') throw new GatehouseError('SECRET_MISSING', `${st.reason} (fix: ${st.fix})`);
    const confined = c.kind === 'stdio' && c.sandbox !== 'off' && c.egress.length > 0 ? ' (connector test runs it confined without the egress proxy: its egress hosts are reachable only under gatehouse serve)' : '';
    if (st.state === 'failed') throw new GatehouseError('UPSTREAM_UNAVAILABLE', `${st.reason}${confined}`);
    throw new GatehouseError('UPSTREAM_UNAVAILABLE', `upstream is ${st.state}${confined}`);
  } finally {
    await u.stop();
  }
}

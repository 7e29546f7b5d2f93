import { probeBuiltin, isBuiltinKind } from '../connectors/index.js';
import { ProviderError } from '../connectors/errors.js';
import { connectorStatus } from '../connectors/status.js';
import { addFromTemplate, listTemplates } from '../connectors/templates.js';
import { GatehouseError, errorMessage } from '../errors.js';
import { silentLogger } from '../log.js';
import { loadRegistry } from '../registry/load.js';
import { isProvider, type ToolConnector } from '../registry/schema.js';
import { probeProvider } from '../inference/probe.js';
import { bindSecrets } from '../secrets/bindings.js';
import { KeychainStore } from '../secrets/keychain.js';
import { StoreResolver } from '../secrets/resolve.js';
import type { SecretStore } from '../secrets/store.js';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, Upstream } from '../upstreams/upstream.js';
import { dirname } from 'node:path';
import { type Command, Exit, helpForSubcommand, type Io, parse, table } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';
import { invocation } from './invocation.js';
import { esc, escapeText, jsonLine } from '../terminal.js';

const HELP = `Usage: gatehouse connector <add|list|test> [options]

Registers the services agents may use, and checks them.

  add TEMPLATE   write registry/<name>.yaml from a template
  list           each connector: kind, ready or why not, tools exposed
  test NAME      one harmless authenticated request to the service

Run "gatehouse connector <subcommand> --help" for its options.
`;

const ADD_HELP = `Usage: gatehouse connector add TEMPLATE [--name N] [--secret NAME] [--base-url URL] [--email ADDR] [--force]

Writes <registry>/<name>.yaml from a template and validates it. Templates:
%TEMPLATES%

Options:
  --name N           connector name (default: the template's); tools are exposed as N__<tool>
  --secret NAME      keychain secret for the credential (default: the template's, renamed after --name)
  --base-url URL     service URL (GitHub Enterprise: https://HOST/api/v3; Jira: https://SITE.atlassian.net)
  --email ADDR       Jira Cloud: the account email that owns the API token
  --force            overwrite an existing file
${DIR_HELP}
  -h, --help         this help
`;

const LIST_HELP = `Usage: gatehouse connector list [--json]

Lists the registry's connectors, computed offline: whether each one's
secrets are set in the keychain, and the tools a built-in connector exposes.
MCP upstreams (stdio, http) list their tools once served ("connector test" starts one briefly).

Options:
  --json             one JSON array
${DIR_HELP}
  -h, --help         this help
`;

const TEST_HELP = `Usage: gatehouse connector test NAME [--json]

Makes one harmless authenticated request with the stored credential:
  github   GET /user (login, and a classic token's scopes)
  slack    auth.test (bot, team, scopes)
  jira     GET /rest/api/3/myself (Cloud) or /rest/api/2/myself (Data Center)
  http / stdio   starts the MCP server and lists its tools
Exit 0 when it works, 1 when the service refused (credential, scope, not found)
or a secret is missing, 3 when the service or the keychain could not be reached.

Options:
  --json             print {"ok","connector","kind","detail"} as JSON
${DIR_HELP}
  -h, --help         this help
`;

export function connectorCommandWith(openStore: () => SecretStore): Command {
  return {
    name: 'connector',
    summary: 'add, list and test connectors (GitHub, Slack, Jira, MCP servers)',
    help: HELP,
    async run(argv, io) {
      const sub = argv[0];
      const helped = helpForSubcommand(sub, HELP, io);
      if (helped !== undefined) return helped;
      const rest = argv.slice(1);
      if (sub === 'add') return add(rest, io);
      if (sub === 'list') return list(rest, io, openStore);
      if (sub === 'test') return test(rest, io, openStore);
      throw new GatehouseError('USAGE', `unknown subcommand "connector ${sub}"; use add, list or test`);
    },
  };
}

export const connectorCommand: Command = connectorCommandWith(() => new KeychainStore());

function addHelp(): string {
  const t = listTemplates();
  const w = Math.max(...t.map((x) => x.name.length));
  return ADD_HELP.replace('%TEMPLATES%', t.map((x) => `  ${x.name.padEnd(w)}  ${x.summary}`).join('\n'));
}

async function add(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...dirOptions, name: { type: 'string' }, secret: { type: 'string' }, 'base-url': { type: 'string' }, email: { type: 'string' }, force: { type: 'boolean' } },
    true,
  );
  if (values.help) {
    io.out(addHelp());
    return Exit.Ok;
  }
  if (positionals.length !== 1) throw new GatehouseError('USAGE', `give one template, e.g. gatehouse connector add github --secret github-token`);
  const dirs = dirsFrom(values, io.env);
  const r = addFromTemplate({
    template: positionals[0] as string,
    registryDir: dirs.registry,
    ...(values.name !== undefined ? { name: values.name } : {}),
    ...(values.secret !== undefined ? { secret: values.secret } : {}),
    ...(values['base-url'] !== undefined ? { baseUrl: values['base-url'] } : {}),
    ...(values.email !== undefined ? { email: values.email } : {}),
    ...(values.force === true ? { force: true } : {}),
  });
  const cli = invocation();
  const steps = r.secrets.map((s) => `  ${cli} secret set ${s}`);
  const c = r.connector;
  const todo: string[] = [];
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

async function list(argv: string[], io: Io, openStore: () => SecretStore): Promise<number> {
  const { values } = parse(argv, { ...dirOptions, json: { type: 'boolean' } });
  if (values.help) {
    io.out(LIST_HELP);
    return Exit.Ok;
  }
  const dirs = dirsFrom(values, io.env);
  const registry = loadRegistry(dirs.registry);
  const store = openStore();
  const rows = [];
  for (const c of registry.connectors) rows.push(await connectorStatus(c, store));
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
      rows.map((r) => [r.name, r.kind, r.ready ? 'ready' : `not ready: ${r.reason ?? ''}`, r.tools === null ? 'n/a until served' : String(r.tools.length), r.fix ?? '']),
    ),
  );
  if (storeError !== undefined) io.err('\n' + esc`${store.description}: ${storeError}` + '\n');
  return code;
}

function exitFor(e: unknown): number {
  if (e instanceof ProviderError) return e.kind === 'unavailable' || e.kind === 'protocol' || e.kind === 'rate_limited' ? Exit.Unavailable : Exit.Failed;
  if (e instanceof GatehouseError) return e.code.endsWith('UNAVAILABLE') ? Exit.Unavailable : Exit.Failed;
  return Exit.Unavailable;
}

async function test(argv: string[], io: Io, openStore: () => SecretStore): Promise<number> {
  const { values, positionals } = parse(argv, { ...dirOptions, json: { type: 'boolean' } }, true);
  if (values.help) {
    io.out(TEST_HELP);
    return Exit.Ok;
  }
  if (positionals.length !== 1) throw new GatehouseError('USAGE', 'give one connector name, e.g. gatehouse connector test github');
  const dirs = dirsFrom(values, io.env);
  const registry = loadRegistry(dirs.registry);
  const c = registry.connectors.find((x) => x.name === positionals[0]);
  if (!c) throw new GatehouseError('USAGE', `no connector "${positionals[0]}" in ${dirs.registry}; see: gatehouse connector list`);
  const resolver = new StoreResolver(openStore(), { bindings: bindSecrets(registry.connectors).bindings, cacheMs: 0 });
  const report = (ok: boolean, detail: string, code: number) => {
    if (values.json) io.out(jsonLine({ ok, connector: c.name, kind: c.kind, detail }));
    // detail carries what the service or MCP server said (tool names, error text): escaped.
    else (ok ? io.out : io.err)(esc`${c.name} (${c.kind}): ${ok ? 'ok' : 'FAILED'}: ${detail}\n`);
    return code;
  };
  try {
    const detail = isProvider(c) ? await probeProvider(c, resolver) : isBuiltinKind(c.kind) ? await probeBuiltinConnector(c, resolver) : await probeMcp(c, resolver, dirname(dirs.registry));
    return report(true, detail, Exit.Ok);
  } catch (e) {
    return report(false, e instanceof Error ? e.message : errorMessage(e), exitFor(e));
  } finally {
    resolver.close();
  }
}

async function probeBuiltinConnector(c: ToolConnector, resolver: StoreResolver): Promise<string> {
  if (!isBuiltinKind(c.kind)) throw new GatehouseError('INTERNAL', 'not a built-in');
  const timeout = c.timeouts.call ?? 20_000;
  return probeBuiltin(
    c as Parameters<typeof probeBuiltin>[0],
    { render: (t, ctx) => resolver.render(t, ctx), logger: silentLogger, connectTimeoutMs: c.timeouts.connect ?? DEFAULT_CONNECT_TIMEOUT_MS, callTimeoutMs: Math.min(timeout, DEFAULT_CALL_TIMEOUT_MS) },
    AbortSignal.timeout(timeout),
  );
}

/** Starts an MCP upstream once (initialize + tools/list with the real credential), then stops it. */
async function probeMcp(c: ToolConnector, resolver: StoreResolver, baseDir: string): Promise<string> {
  const u = new Upstream({ connector: c, baseDir, secrets: resolver, logger: silentLogger, onToolsChanged: () => undefined, backoffMs: 3_600_000 });
  try {
    await u.start();
    const st = u.status;
    if (st.state === 'ready') return `MCP server answered; ${u.tools.length} tools (${u.tools.slice(0, 8).map((t) => t.name).join(', ')}${u.tools.length > 8 ? ', ...' : ''})`;
    if (st.state === 'not-ready') throw new GatehouseError('SECRET_MISSING', `${st.reason} (fix: ${st.fix})`);
    if (st.state === 'failed') throw new GatehouseError('UPSTREAM_UNAVAILABLE', st.reason);
    throw new GatehouseError('UPSTREAM_UNAVAILABLE', `upstream is ${st.state}`);
  } finally {
    await u.stop();
  }
}

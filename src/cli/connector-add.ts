/**
 * `gatehouse connector add NAME -- CMD [ARGS...]` (a stdio MCP server) and
 * `gatehouse connector add NAME --url URL [--header 'K: V']` (a remote one):
 * one registry file, validated with the registry schema before it is written.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Document } from 'yaml';
import { parseYamlConfig } from '../config/load-yaml.js';
import { Exit, GatehouseError, errorMessage } from '../errors.js';
import { loadRegistry } from '../registry/load.js';
import { CONNECTOR_NAME, ConnectorSchema, connectorSecrets, type Connector } from '../registry/schema.js';
import { missingSecrets } from '../secrets/presence.js';
import type { SecretStore } from '../secrets/store.js';
import { escapeText } from '../terminal.js';
import { collect, dirsFrom, type Command, type DirFlags, type Io } from './command.js';
import { invocation } from './invocation.js';

export interface GenericAdd {
  name: string;
  registryDir: string;
  /** stdio: the command and its arguments (what follows `--`). */
  command?: string[];
  /** http: the MCP endpoint. */
  url?: string;
  /** http: "Name: value" as typed; a value may hold ${secret:NAME}. */
  headers?: string[];
  description?: string;
  /** http: the server signs in with OAuth (`oauth: {}`; then `gatehouse connector login NAME`). */
  oauth?: boolean;
  force?: boolean;
}

export interface GenericAdded {
  file: string;
  connector: Connector;
  /** Secrets the entry refers to that the store does not hold yet. */
  missing: string[];
  /** The store could not be asked (the entry is written all the same). */
  storeError?: string;
}

/** "Authorization: Bearer ${secret:x}" → [name, value]; the name is checked by the schema (RFC 9110 token). */
export function parseHeaderFlag(h: string): [string, string] {
  const i = h.indexOf(':');
  if (i <= 0) throw new GatehouseError('USAGE', `--header ${JSON.stringify(h)}: write it as "Name: value", e.g. --header 'Authorization: Bearer \${secret:my-token}'`);
  return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
}

/** The YAML text for the entry (not yet validated). */
export function genericYaml(o: GenericAdd): string {
  if (!CONNECTOR_NAME.test(o.name)) throw new GatehouseError('USAGE', `connector name ${JSON.stringify(o.name)}: lowercase letters, digits and "-", at most 32 characters`);
  const hasCommand = o.command !== undefined && o.command.length > 0;
  if (hasCommand === (o.url !== undefined)) {
    throw new GatehouseError('USAGE', `give either a command after "--" (a stdio MCP server) or --url (a remote one), e.g. gatehouse connector add ${o.name} -- npx -y @modelcontextprotocol/server-everything`);
  }
  if (hasCommand && (o.headers ?? []).length > 0) throw new GatehouseError('USAGE', '--header applies to --url only; a stdio server gets credentials through env in its registry file');
  if (hasCommand && o.oauth === true) throw new GatehouseError('USAGE', '--oauth applies to --url only (a remote MCP server that signs in with OAuth)');
  const entry: Record<string, unknown> = { name: o.name };
  if (o.description !== undefined) entry.description = o.description;
  let comment: string;
  if (hasCommand) {
    const [command, ...args] = o.command ?? [];
    Object.assign(entry, { kind: 'stdio', command, args, env: {} });
    comment = ` A stdio MCP server, started by the gateway (added with gatehouse connector add).\n A relative command or argument path resolves against the registry's parent folder.`;
  } else {
    const headers: Record<string, string> = {};
    for (const h of o.headers ?? []) {
      const [k, v] = parseHeaderFlag(h);
      if (k in headers) throw new GatehouseError('USAGE', `--header ${JSON.stringify(k)} is given twice`);
      headers[k] = v;
    }
    Object.assign(entry, { kind: 'http', url: o.url, headers, ...(o.oauth === true ? { oauth: {} } : {}) });
    comment = ' A remote MCP server (Streamable HTTP), added with gatehouse connector add.';
    if (o.oauth === true) comment += `\n It signs in with OAuth: gatehouse connector login ${o.name} (README, "Upstream OAuth").`;
  }
  entry.tools = { allow: ['*'], deny: [] };
  const doc = new Document(entry);
  doc.commentBefore = comment;
  return doc.toString();
}

/** Validates and writes `<registry>/<name>.yaml`; names the secrets it refers to that are not set yet. */
export async function addGeneric(o: GenericAdd, store: SecretStore): Promise<GenericAdded> {
  const file = join(o.registryDir, `${o.name}.yaml`);
  const text = genericYaml(o);
  // Invalid (a bad URL, header name or secret reference) → ConfigError naming file:line: nothing is written.
  const connector = { ...parseYamlConfig(file, text, ConnectorSchema), file } as Connector;
  if (!existsSync(o.registryDir)) throw new GatehouseError('USAGE', `registry directory ${o.registryDir} does not exist; create it or pass --registry DIR`);
  if (existsSync(file) && o.force !== true) throw new GatehouseError('USAGE', `${file} already exists; pass --force to overwrite it`);
  let clash: Connector | undefined;
  try {
    clash = loadRegistry(o.registryDir).connectors.find((c) => c.name === o.name && c.file !== file);
  } catch {
    // An invalid registry is reported by list/serve; it does not stop adding a valid file.
  }
  if (clash) throw new GatehouseError('USAGE', `connector "${o.name}" is already defined in ${clash.file}; choose another name`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
  const missing: string[] = [];
  let storeError: string | undefined;
  try {
    missing.push(...(await missingSecrets(store, connectorSecrets(connector))));
  } catch (e) {
    storeError = errorMessage(e);
  }
  return { file, connector, missing, ...(storeError !== undefined ? { storeError } : {}) };
}

/** What `connector add` prints after writing: the file, then each step left (secrets to set, the test, a policy). */
export function genericReport(r: GenericAdded, cli: string): string {
  const c = r.connector;
  const steps = [
    // A store that could not be asked: every secret may be missing, and doctor says what is wrong with the keychain.
    ...(r.storeError !== undefined ? [`  ${cli} doctor   (the keychain could not be asked: ${escapeText(r.storeError.slice(0, 120))}...)`] : []),
    ...(r.storeError !== undefined ? connectorSecrets(c) : r.missing).map((s) => `  ${cli} secret set ${s}`),
    ...(c.kind === 'http' && c.oauth !== undefined ? [`  ${cli} connector login ${c.name}`] : []),
    `  ${cli} connector test ${c.name}`,
  ];
  // Names are validated; the file path and the store's reason are data, escaped where they are put in.
  return (
    `Wrote ${escapeText(r.file)} (connector "${c.name}", kind ${c.kind}).\n` +
    (r.missing.length > 0 ? `Not set yet: ${r.missing.join(', ')}.\n` : '') +
    `Next:\n${steps.join('\n')}\n` +
    `Then give its tools a policy (reads allow, writes ask); a running gateway picks the file up by itself.\n`
  );
}

export interface GenericFlags {
  url?: string;
  header?: string[];
  description?: string;
  oauth?: boolean;
}

/** The generic forms' flags and help, added to `connector add` (the template form's own flags stay as they are). */
export function withGenericAdd(add: Command): Command {
  return add
    .option('--url <url>', 'a remote MCP server (Streamable HTTP) instead of a template: its endpoint')
    .option('--header <"K: V">', "with --url: a request header, repeatable; a value may use ${secret:NAME}", collect)
    .option('--description <text>', 'with --url or a command: what the connector is for')
    .option('--oauth', 'with --url: the server signs in with OAuth (then: gatehouse connector login NAME)')
    .addHelpText(
      'after',
      `
Any MCP server, not only a template:
  gatehouse connector add NAME -- CMD [ARGS...]          a stdio server the gateway starts
  gatehouse connector add NAME --url https://HOST/mcp [--header 'Authorization: Bearer \${secret:NAME-token}']
The entry is checked against the registry schema before it is written; secrets
it refers to that are not set yet are named (set them: gatehouse secret set NAME).`,
    );
}

/** `connector add NAME -- CMD…` / `connector add NAME --url URL`: writes the file and prints the steps left. */
export async function addGenericCommand(name: string, command: string[], o: DirFlags & GenericFlags & { force?: boolean; secret?: string; baseUrl?: string; email?: string }, io: Io, store: SecretStore): Promise<number> {
  for (const [flag, v] of [['--secret', o.secret], ['--base-url', o.baseUrl], ['--email', o.email]] as const) {
    if (v !== undefined) throw new GatehouseError('USAGE', `${flag} applies to templates only; for --url put the secret in a header: --header 'Authorization: Bearer \${secret:${name}-token}'`);
  }
  const r = await addGeneric(
    {
      name,
      registryDir: dirsFrom(o, io.env).registry,
      ...(command.length > 0 ? { command } : {}),
      ...(o.url !== undefined ? { url: o.url } : {}),
      ...(o.header !== undefined ? { headers: o.header } : {}),
      ...(o.description !== undefined ? { description: o.description } : {}),
      ...(o.oauth === true ? { oauth: true } : {}),
      ...(o.force === true ? { force: true } : {}),
    },
    store,
  );
  io.out(genericReport(r, invocation()));
  return Exit.Ok;
}

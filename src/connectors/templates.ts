/**
 * Registry templates (registry/templates/*.yaml, not loaded by the gateway)
 * and `gatehouse connector add`: a template turned into one registry file,
 * validated with the registry schema before anything is written.
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, visit } from 'yaml';
import { parseYamlConfig } from '../config/load-yaml.js';
import { packageRoot } from '../config/paths.js';
import { GatehouseError } from '../errors.js';
import { loadRegistry } from '../registry/load.js';
import { CONNECTOR_NAME, ConnectorSchema, connectorSecrets, type Connector } from '../registry/schema.js';
import { SECRET_NAME } from '../secrets/template.js';

export interface TemplateInfo {
  name: string;
  summary: string;
}

export function templatesDir(): string {
  return join(packageRoot(), 'registry', 'templates');
}

export function listTemplates(dir = templatesDir()): TemplateInfo[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const doc = parseDocument(readFileSync(join(dir, f), 'utf8'));
      return { name: f.replace(/\.yaml$/, ''), summary: String(doc.get('description') ?? '') };
    });
}

export interface AddOptions {
  template: string;
  name?: string;
  /** New name for the template's (first) secret. */
  secret?: string;
  baseUrl?: string;
  /** Jira Cloud: the account's email. */
  email?: string;
  registryDir: string;
  force?: boolean;
  templates?: string;
}

export interface AddResult {
  file: string;
  connector: Connector;
  secrets: string[];
}

const REF = /\$\{secret:([^}]*)\}/g;

/** Writes `registry/<name>.yaml` from a template. Throws GatehouseError (USAGE, CONFIG_INVALID). */
export function addFromTemplate(o: AddOptions): AddResult {
  const dir = o.templates ?? templatesDir();
  if (!/^[a-z0-9-]{1,64}$/.test(o.template) || !existsSync(join(dir, `${o.template}.yaml`))) {
    throw new GatehouseError('USAGE', `no template "${o.template}"; templates: ${listTemplates(dir).map((t) => t.name).join(', ')}`);
  }
  const doc = parseDocument(readFileSync(join(dir, `${o.template}.yaml`), 'utf8'));
  const tplName = String(doc.get('name'));
  const name = o.name ?? tplName;
  if (!CONNECTOR_NAME.test(name)) throw new GatehouseError('USAGE', `--name ${JSON.stringify(name)}: lowercase letters, digits and "-", at most 32 characters`);
  doc.set('name', name);

  // The template's secret, renamed: --secret, or after the connector (a secret named after a connector is bound to it).
  const refs = new Set<string>();
  visit(doc, { Scalar: (_k, n) => void (typeof n.value === 'string' && [...n.value.matchAll(REF)].forEach((m) => refs.add(m[1] ?? ''))) });
  const first = [...refs][0];
  const rename = o.secret ?? (first !== undefined && name !== tplName && first.startsWith(`${tplName}-`) ? `${name}${first.slice(tplName.length)}` : undefined);
  if (rename !== undefined) {
    if (!SECRET_NAME.test(rename)) throw new GatehouseError('USAGE', `--secret ${JSON.stringify(rename)}: letters, digits, ".", "_", "-"`);
    if (first === undefined) throw new GatehouseError('USAGE', `template "${o.template}" uses no secret; --secret does not apply`);
    visit(doc, {
      Scalar: (_k, n) => {
        if (typeof n.value === 'string') n.value = n.value.split(`\${secret:${first}}`).join(`\${secret:${rename}}`);
      },
    });
  }
  if (o.baseUrl !== undefined) doc.set(doc.get('kind') === 'http' || doc.get('kind') === 'inference' ? 'url' : 'baseUrl', o.baseUrl);
  if (o.email !== undefined) {
    const auth = doc.get('auth', true);
    if (!auth || !doc.hasIn(['auth', 'email'])) throw new GatehouseError('USAGE', `template "${o.template}" has no auth.email; --email does not apply`);
    doc.setIn(['auth', 'email'], o.email);
  }
  // Point the comment's "gatehouse secret set" hint at the renamed secret too.
  if (rename !== undefined && first !== undefined && doc.commentBefore) doc.commentBefore = doc.commentBefore.split(first).join(rename);

  const file = join(o.registryDir, `${name}.yaml`);
  const text = doc.toString();
  const connector = { ...parseYamlConfig(file, text, ConnectorSchema), file } as Connector;
  if (existsSync(file) && o.force !== true) throw new GatehouseError('USAGE', `${file} already exists; pass --force to overwrite it`);
  if (!existsSync(o.registryDir)) throw new GatehouseError('USAGE', `registry directory ${o.registryDir} does not exist; pass --registry DIR`);
  let others: Connector[] = [];
  try {
    others = loadRegistry(o.registryDir).connectors.filter((c) => c.file !== file);
  } catch {
    // An invalid registry is reported by list/serve; it does not stop adding a valid file.
  }
  const clash = others.find((c) => c.name === name);
  if (clash) throw new GatehouseError('USAGE', `connector "${name}" is already defined in ${clash.file}; choose another --name`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
  return { file, connector, secrets: connectorSecrets(connector) };
}

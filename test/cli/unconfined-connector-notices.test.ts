/**
 * `sandbox: off` is loud (issue #15): serve's warning, the status column and
 * JSON, doctor's checks. In-process, from registry objects and reports; the
 * real gateway and CLI are in unconfined-connector.int.test.ts.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectorChecks } from '../../src/cli/doctor-checks.js';
import { setupReport } from '../../src/cli/doctor.js';
import { unconfinedLine, unconfinedWarner } from '../../src/cli/serve-notices.js';
import { formatStatus, type GatewayStatus, type StatusConnector } from '../../src/cli/status.js';
import { sandboxOf, unconfinedConnectors, unconfinedField, withSandbox } from '../../src/registry/confinement.js';
import type { Connector } from '../../src/registry/schema.js';
import type { SandboxProbe } from '../../src/sandbox/launcher.js';
import { tempDir } from '../helpers/gateway.js';

/** A registry entry as the loader makes it (only the keys these functions read). */
const stdio = (name: string, sandbox: 'off' | { ro: string[]; rw: string[] }, extra: Record<string, unknown> = {}) =>
  ({ name, kind: 'stdio', command: 'node', args: [], env: {}, enabled: true, egress: [], sandbox, file: `/reg/${name}.yaml`, ...extra }) as unknown as Connector;
const http = (name: string) => ({ name, kind: 'http', url: 'https://x.example/mcp', enabled: true, file: `/reg/${name}.yaml` }) as unknown as Connector;
const CONFINED = { ro: [], rw: [] };

describe('which connectors are unconfined', () => {
  it('only enabled stdio connectors with sandbox: off; http and built-ins have no sandbox to report', () => {
    const connectors = [stdio('loose', 'off'), stdio('boxed', CONFINED), stdio('parked', 'off', { enabled: false }), http('remote')];
    expect(unconfinedConnectors(connectors).map((c) => c.name)).toEqual(['loose']);
    expect(connectors.map(sandboxOf)).toEqual(['off', 'confined', 'off', undefined]);
    expect(unconfinedField(connectors)).toEqual({ unconfined: ['loose'] });
    // No empty list in a record: the field is there only when it says something.
    expect(unconfinedField([stdio('boxed', CONFINED), http('remote')])).toEqual({});
    const rows = withSandbox([{ name: 'loose' }, { name: 'boxed' }, { name: 'remote' }], connectors);
    expect(rows).toEqual([{ name: 'loose', sandbox: 'off' }, { name: 'boxed', sandbox: 'confined' }, { name: 'remote' }]);
  });
});

describe('serve: the unconfined warning', () => {
  it('names the connector, the file that says sandbox: off, and what it can reach', () => {
    expect(unconfinedLine({ name: 'x', file: '/path/x.yaml' })).toBe(
      'warning: connector "x" runs unconfined (sandbox: off in /path/x.yaml): it can read your files and keys and reach the network',
    );
  });

  it('one warning per unconfined connector at start-up, then one for each a reload brings; one that stays is not repeated', () => {
    const lines: string[] = [];
    const warn = unconfinedWarner((l) => lines.push(l));
    warn({ connectors: [stdio('a', 'off'), stdio('b', CONFINED), http('h'), stdio('c', 'off')] });
    expect(lines).toEqual([unconfinedLine({ name: 'a', file: '/reg/a.yaml' }) + '\n', unconfinedLine({ name: 'c', file: '/reg/c.yaml' }) + '\n']);
    lines.length = 0;
    // A reload: a unchanged, b now off, d added off, c removed.
    warn({ connectors: [stdio('a', 'off'), stdio('b', 'off'), stdio('d', 'off')] });
    expect(lines.map((l) => /connector "(\w+)"/.exec(l)?.[1])).toEqual(['b', 'd']);
    lines.length = 0;
    // Nothing changed (a catalog event for another reason): quiet.
    warn({ connectors: [stdio('a', 'off'), stdio('b', 'off'), stdio('d', 'off')] });
    expect(lines).toEqual([]);
    // c comes back: it is unconfined again, so it is said again.
    warn({ connectors: [stdio('a', 'off'), stdio('c', 'off')] });
    expect(lines.map((l) => /connector "(\w+)"/.exec(l)?.[1])).toEqual(['c']);
  });

  it('hostile_connector_name_and_path_escape_codes_are_printed_escaped', () => {
    const lines: string[] = [];
    // The schema refuses such a name, but the line must not depend on that; a path may hold anything.
    const name = 'x\x1b]52;c;cHduZWQ=\x07\u202e';
    unconfinedWarner((l) => lines.push(l))({ connectors: [stdio(name, 'off', { file: '/tmp/\x1b[2J\x1b[H/x.yaml' })] });
    expect(lines).toHaveLength(1);
    const line = lines[0] ?? '';
    expect(line).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    expect(line).toContain('connector "x\\x1b]52;c;cHduZWQ=\\x07\\u202e"');
    expect(line).toContain('sandbox: off in /tmp/\\x1b[2J\\x1b[H/x.yaml');
    expect(line.endsWith('reach the network\n')).toBe(true);
  });
});

describe('status: how each stdio connector runs', () => {
  const report = (name: string, kind: string, sandbox?: 'confined' | 'off'): StatusConnector =>
    ({ name, kind, file: `/reg/${name}.yaml`, status: { state: 'ready' }, tools: 2, secrets: [], problems: [], ...(sandbox ? { sandbox } : {}) }) as StatusConnector;
  const status = (connectors: StatusConnector[]): GatewayStatus => ({
    gateway: { version: '1', pid: 1 },
    connectors,
    sessions: { total: 0, agents: [] },
    sandboxes: [],
    approvals: [],
  });

  it('stdio rows say confined or UNCONFINED (sandbox: off); an http row says nothing there', () => {
    const text = formatStatus(status([report('loose', 'stdio', 'off'), report('boxed', 'stdio', 'confined'), report('remote', 'http')]), 'gatehouse');
    expect(text).toMatch(/^NAME +KIND +STATE +TOOLS +SANDBOX +WHY$/m);
    expect(text).toMatch(/^loose +stdio +ready +2 +UNCONFINED \(sandbox: off\)$/m);
    expect(text).toMatch(/^boxed +stdio +ready +2 +confined$/m);
    expect(text).toMatch(/^remote +http +ready +2$/m);
  });

  it('a gateway with no stdio connector shows no SANDBOX column', () => {
    const text = formatStatus(status([report('remote', 'http'), report('gh', 'github')]), 'gatehouse');
    expect(text).toMatch(/^NAME +KIND +STATE +TOOLS +WHY$/m);
    expect(text).not.toContain('SANDBOX');
    expect(text).not.toMatch(/confined|UNCONFINED/);
  });

  it('hostile_connector_name_in_status_is_printed_escaped', () => {
    const text = formatStatus(status([report('x\x1b[2J\u202e', 'stdio', 'off')]), 'gatehouse');
    expect(text).not.toMatch(/[\x1b\u202e]/);
    expect(text).toMatch(/^x\\x1b\[2J\\u202e +stdio +ready +2 +UNCONFINED \(sandbox: off\)$/m);
  });
});

describe('doctor: connector confinement', () => {
  const roots: string[] = [];
  afterAll(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });
  function registryWith(files: Record<string, string>) {
    const root = tempDir('gatehouse-doctor-confine-');
    roots.push(root);
    const dirs = { registry: join(root, 'registry'), policies: join(root, 'policies'), state: join(root, 'state') };
    mkdirSync(dirs.registry);
    for (const [f, text] of Object.entries(files)) writeFileSync(join(dirs.registry, f), text);
    return dirs;
  }
  const probe = (ok: boolean, missing: string[] = []) => ({ ok, missing }) as unknown as SandboxProbe;

  it('a stdio connector with sandbox: off is a warning naming it and its file; doctor does not fail on it', () => {
    const dirs = registryWith({ 'loose.yaml': 'name: loose\nkind: stdio\ncommand: node\nsandbox: off\n', 'boxed.yaml': 'name: boxed\nkind: stdio\ncommand: node\n' });
    const checks = connectorChecks(dirs, probe(true));
    expect(checks).toHaveLength(1);
    const [warn] = checks;
    expect(warn).toMatchObject({ name: 'unconfined connectors', ok: false, required: false });
    expect(warn?.detail).toContain(`loose (${join(dirs.registry, 'loose.yaml')})`);
    expect(warn?.detail).not.toContain('boxed');
    expect(warn?.fix).toContain(join(dirs.registry, 'loose.yaml'));
    expect(setupReport(checks)).toMatch(/^unconfined connectors +warning +loose /m);
  });

  it('every stdio connector confined, or only http ones: no confinement row', () => {
    expect(connectorChecks(registryWith({ 'boxed.yaml': 'name: boxed\nkind: stdio\ncommand: node\n' }), probe(true))).toEqual([]);
    expect(connectorChecks(registryWith({ 'h.yaml': 'name: h\nkind: http\nurl: https://x.example/mcp\n' }), undefined)).toEqual([]);
  });

  it('launcher not built: the confined stdio connectors cannot start, fix is to build it', () => {
    const dirs = registryWith({ 'boxed.yaml': 'name: boxed\nkind: stdio\ncommand: node\n', 'loose.yaml': 'name: loose\nkind: stdio\ncommand: node\nsandbox: off\n' });
    const blocked = connectorChecks(dirs, undefined).find((c) => c.name === 'confined connectors');
    expect(blocked).toMatchObject({ ok: false });
    expect(blocked?.required).not.toBe(false);
    expect(blocked?.detail).toMatch(/^boxed cannot start: the sandbox launcher is not built/);
    expect(blocked?.fix).toContain('npm run build');
  });

  it('launcher probe fails: the confined stdio connectors cannot start, with the kernel features missing', () => {
    const dirs = registryWith({ 'boxed.yaml': 'name: boxed\nkind: stdio\ncommand: node\n' });
    const [blocked] = connectorChecks(dirs, probe(false, ['Landlock ABI 0 < 6', 'user namespaces']));
    expect(blocked?.detail).toBe('boxed cannot start: this machine lacks what the sandbox needs (Landlock ABI 0 < 6; user namespaces)');
    expect(blocked?.fix).toMatch(/kernel features/);
    expect(setupReport([blocked!])).toMatch(/^confined connectors +PROBLEM +boxed cannot start/m);
  });

  it('a registry that does not load adds nothing here (the registry check reports it)', () => {
    expect(connectorChecks(registryWith({ 'x.yaml': 'name: x\nkind: stdio\ncomand: y\n' }), undefined)).toEqual([]);
  });
});

/**
 * `gatehouse doctor`'s set-up checks (beside the sandbox's kernel checks):
 * the Node version, the OS keychain, whether the configuration loads, and
 * how the registry's stdio connectors will run (unconfined, or confined on a
 * machine where the launcher cannot confine them).
 * Each fix is a command to run; where it is a gatehouse command it exists
 * (test/cli/doctor-setup.test.ts parses every one with the CLI).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, formatIssue } from '../config/load-yaml.js';
import { packageRoot, type Dirs } from '../config/paths.js';
import { errorMessage } from '../errors.js';
import { loadPolicies } from '../policy/load.js';
import { unconfinedConnectors } from '../registry/confinement.js';
import { loadRegistry, type Registry } from '../registry/load.js';
import { connectorSecrets, type StdioConnector } from '../registry/schema.js';
import { launcherPath, type SandboxProbe } from '../sandbox/launcher.js';

export interface SetupCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** What to run; '' when ok. */
  fix: string;
  /** Configuration problems, one `file:line:col: key: message` each. */
  issues?: string[];
  /** The whole explanation, printed below the table (too long for a cell). */
  note?: string;
  /** False: a problem worth saying that does not fail doctor (the keychain when no connector uses a secret). */
  required?: boolean;
}

/** `>=20.19` style minimum from package.json's engines.node (the only form we ship). */
export function minimumNode(range: string): [number, number, number] | undefined {
  const m = /^\s*>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$/.exec(range);
  return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : undefined;
}

export function enginesNode(root = packageRoot()): string {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines?: { node?: string } };
  return pkg.engines?.node ?? '>=0';
}

export function nodeCheck(version = process.versions.node, range = enginesNode()): SetupCheck {
  const min = minimumNode(range);
  const have = version.split('.').map(Number);
  const ok = min === undefined || (have[0] ?? 0) > min[0] || ((have[0] ?? 0) === min[0] && ((have[1] ?? 0) > min[1] || ((have[1] ?? 0) === min[1] && (have[2] ?? 0) >= min[2])));
  return { name: 'Node.js', ok, detail: `${version}, required ${range.trim()}`, fix: ok ? '' : `install Node.js ${range.trim()} (e.g. nvm install 22), then: npm run build` };
}

/** Whether any connector refers to a secret (then the keychain is needed); false too when the registry does not load (reported on its own). */
export function registryUsesSecrets(dirs: Dirs): boolean {
  try {
    return loadRegistry(dirs.registry).connectors.some((c) => connectorSecrets(c).length > 0);
  } catch {
    return false;
  }
}

/** Reachable and unlocked: a write of the probe entry succeeds (a locked keyring refuses writes). */
export async function keychainCheck(store: { probe(): Promise<void>; readonly description: string }, needed = true): Promise<SetupCheck> {
  try {
    await store.probe();
    return { name: 'OS keychain', ok: true, detail: `${store.description}: reachable and unlocked`, fix: '' };
  } catch (e) {
    const why = errorMessage(e);
    const state = /is locked/.test(why) ? 'locked' : 'cannot be reached';
    return { name: 'OS keychain', ok: false, required: needed, detail: needed ? state : `${state} (no connector uses a secret yet)`, fix: 'start or unlock it (see below), then: gatehouse secret check', note: why };
  }
}

function loads(name: string, load: () => unknown, fix: string, dir: string): SetupCheck {
  try {
    load();
    return { name, ok: true, detail: `${dir}: loads`, fix: '' };
  } catch (e) {
    if (e instanceof ConfigError) return { name, ok: false, detail: `${dir}: ${e.issues.length} problem${e.issues.length > 1 ? 's' : ''}`, fix, issues: e.issues.map(formatIssue) };
    return { name, ok: false, detail: `${dir}: ${errorMessage(e)}`, fix };
  }
}

/** A path as one shell word, so the printed command runs as printed. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The registry and the policies as `serve` would load them; each problem with its file and line. */
export function configChecks(dirs: Dirs): SetupCheck[] {
  return [
    loads('registry', () => loadRegistry(dirs.registry), `fix the lines below, then: gatehouse connector list --registry ${shellWord(dirs.registry)}`, dirs.registry),
    loads('policies', () => loadPolicies(dirs.policies), `fix the lines below, then: gatehouse policy check --policies ${shellWord(dirs.policies)}`, dirs.policies),
  ];
}

/** The registry, or undefined when it does not load (the registry check reports that). */
function registryOrNothing(dirs: Dirs): Registry | undefined {
  try {
    return loadRegistry(dirs.registry);
  } catch {
    return undefined;
  }
}

/**
 * How the registry's stdio connectors will run, given what the launcher probe
 * found (undefined: the launcher is not built). A warning (doctor does not
 * fail on it) for each one with `sandbox: off`; a problem when confined ones
 * cannot start because nothing here can confine them.
 */
export function connectorChecks(dirs: Dirs, probe: SandboxProbe | undefined): SetupCheck[] {
  const registry = registryOrNothing(dirs);
  if (registry === undefined) return [];
  const checks: SetupCheck[] = [];
  const unconfined = unconfinedConnectors(registry.connectors);
  if (unconfined.length > 0) {
    checks.push({
      name: 'unconfined connectors',
      ok: false,
      required: false,
      detail: `${unconfined.map((c) => `${c.name} (${c.file})`).join(', ')}: sandbox: off, runs with the gateway's rights (your files, keys and network)`,
      fix: `only for a server you trust; else remove "sandbox: off" from ${unconfined.map((c) => c.file).join(', ')} (it then runs confined)`,
    });
  }
  const confined = registry.connectors.filter((c): c is StdioConnector => c.kind === 'stdio' && c.enabled && c.sandbox !== 'off');
  if (confined.length > 0 && (probe === undefined || !probe.ok)) {
    const names = confined.map((c) => c.name).join(', ');
    checks.push({
      name: 'confined connectors',
      ok: false,
      detail:
        probe === undefined
          ? `${names} cannot start: the sandbox launcher is not built (${launcherPath()})`
          : `${names} cannot start: this machine lacks what the sandbox needs (${probe.missing.join('; ')})`,
      fix: probe === undefined ? 'build the launcher: npm run build (needs a C compiler and kernel headers)' : 'enable the kernel features listed under FEATURE below, then run doctor again',
    });
  }
  return checks;
}

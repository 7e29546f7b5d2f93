import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatehouseError } from '../errors.js';

let root: string | undefined;

/**
 * The installed package's root: the first directory upward whose package.json
 * is gatehouse's (from src/ or dist/src/; a package.json of another name on
 * the way, e.g. one tsc copied, is passed by). The shipped registry/,
 * policies/ and native/build/ binaries are found from here.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; ) {
    if (isGatehousePackage(join(dir, 'package.json'))) return (root = dir);
    const up = dirname(dir);
    if (up === dir) throw new GatehouseError('INTERNAL', `cannot find the gatehouse package root (a package.json named "gatehouse" above ${fileURLToPath(import.meta.url)})`);
    dir = up;
  }
}

function isGatehousePackage(file: string): boolean {
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === 'gatehouse';
  } catch {
    return false;
  }
}

export const VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

export interface Dirs {
  registry: string;
  policies: string;
  state: string;
}

export interface DirFlags {
  registry?: string | undefined;
  policies?: string | undefined;
  state?: string | undefined;
}

/**
 * Every command agrees on what it reads: flag, then environment variable,
 * then ./registry and ./policies (falling back to the ones shipped with the
 * package: the embedded default), and a per-user state directory.
 */
export function resolveDirs(flags: DirFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Dirs {
  const pick = (flag: string | undefined, envName: string, local: string): string => {
    if (flag !== undefined && flag !== '') return resolve(cwd, flag);
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return resolve(cwd, fromEnv);
    const here = resolve(cwd, local);
    return existsSync(here) ? here : join(packageRoot(), local);
  };
  const stateBase = env.XDG_STATE_HOME && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(env.HOME ?? homedir(), '.local', 'state');
  const state =
    flags.state !== undefined && flags.state !== ''
      ? resolve(cwd, flags.state)
      : env.GATEHOUSE_STATE !== undefined && env.GATEHOUSE_STATE !== ''
        ? resolve(cwd, env.GATEHOUSE_STATE)
        : join(stateBase, 'gatehouse');
  return { registry: pick(flags.registry, 'GATEHOUSE_REGISTRY', 'registry'), policies: pick(flags.policies, 'GATEHOUSE_POLICIES', 'policies'), state };
}

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The installed package's root (where package.json of "gatehouse" is), from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'gatehouse') return dir;
      } catch {
        // keep looking upward
      }
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the gatehouse package root');
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

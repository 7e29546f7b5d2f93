import { resolveDirs, type Dirs } from '../config/paths.js';
import type { Options } from './command.js';

/** The flags every command takes, so serve, run, policy, logs and audit agree on what they read. */
export const dirOptions = {
  registry: { type: 'string' },
  policies: { type: 'string' },
  state: { type: 'string' },
} as const satisfies Options;

export const DIR_HELP = `  --registry DIR     connector definitions (env GATEHOUSE_REGISTRY; default ./registry, else the shipped one)
  --policies DIR     policy files (env GATEHOUSE_POLICIES; default ./policies, else the shipped one)
  --state DIR        keys, audit log, sockets (env GATEHOUSE_STATE; default ~/.local/state/gatehouse)`;

export function dirsFrom(values: { registry?: string | undefined; policies?: string | undefined; state?: string | undefined }, env: NodeJS.ProcessEnv): Dirs {
  return resolveDirs({ registry: values.registry, policies: values.policies, state: values.state }, env);
}

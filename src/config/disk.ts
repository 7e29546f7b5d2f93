import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The device of a path, or of its nearest existing ancestor (the state directory may not exist yet). */
function deviceOf(path: string): number | undefined {
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      return statSync(p).dev;
    } catch {
      if (dirname(p) === p) return undefined;
    }
  }
}

/** True when both paths (or where they would be created) lie on one filesystem. */
export function sharesFilesystem(a: string, b: string): boolean {
  const da = deviceOf(a);
  return da !== undefined && da === deviceOf(b);
}

/**
 * The warning `serve`, `run` and `doctor` print when agents' workspaces share
 * a filesystem with the gateway state: an agent that fills it eats the audit
 * log's headroom, and every agent's new calls are refused until space is freed.
 */
export function sharedDiskWarning(state: string, workspaces: string): string {
  return (
    `the gateway state (${state}) shares a filesystem with ${workspaces}: an agent that fills a workspace there ` +
    "eats the audit log's headroom, and every agent's new calls are refused until space is freed. " +
    'Keep workspaces on another filesystem (or under a quota) where you can.'
  );
}

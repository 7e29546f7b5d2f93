/**
 * Each agent's own HOME inside `gatehouse run` (Claude Code writes ~/.claude,
 * Codex ~/.codex): a private directory kept between runs, never the user's
 * real home. Default `<state>/homes/<agent>`; `--home DIR`
 * chooses another. `--home-seed DIR` copies the agent's non-secret settings in
 * (files the home does not have yet; links and credential files are skipped).
 *
 * The home is agent-writable: host-side code here only creates directories
 * and new files in it, through SafeDir (no link the agent left is followed).
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../errors.js';
import { agentHomesDir } from './overlap.js';
import { SafeDir } from './safe-dir.js';

/** Where an agent's home is kept unless --home says otherwise: `<state>/homes/<agent>` (the one folder of the state directory a sandbox may see). */
export function defaultAgentHome(state: string, agent: string): string {
  return join(agentHomesDir(state), agent);
}

/** Creates the home (0700) if needed and returns its canonical path; refuses a symlink or a non-directory. */
export function prepareAgentHome(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const st = lstatSync(path);
  if (!st.isDirectory()) throw new GatehouseError('USAGE', `--home ${path} is not a directory (a symlink?)`);
  return realpathSync(path);
}

/** Names that hold credentials: never copied into a sandbox. */
const CREDENTIAL = /^(\.credentials\.json|auth\.json|\.netrc|\.npmrc|\.pypirc|\.git-credentials|credentials(\.json)?|id_[a-z0-9]+(\.pub)?|.*\.(pem|key|p12|pfx)|\.env(\..*)?|\.ssh|\.gnupg|\.aws|\.kube|\.docker|keyrings)$/i;
const MAX_FILES = 10_000;
const MAX_BYTES = 64 * 1024 * 1024;

export interface SeedReport {
  copied: number;
  /** Already in the home: the agent's copy is kept. */
  kept: number;
  skipped: string[];
}

/** Copies `seed` (a directory of the user's, trusted) into `home` (agent-writable), never overwriting. */
export function seedAgentHome(home: string, seed: string): SeedReport {
  const report: SeedReport = { copied: 0, kept: 0, skipped: [] };
  let bytes = 0;
  const walk = (from: string, to: SafeDir, rel: string) => {
    for (const name of readdirSync(from).sort()) {
      const src = join(from, name);
      const shown = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(src);
      if (CREDENTIAL.test(name)) {
        report.skipped.push(`${shown} (looks like a credential: the agent must not hold one)`);
        continue;
      }
      if (st.isSymbolicLink()) {
        report.skipped.push(`${shown} (a symlink)`);
        continue;
      }
      if (st.isDirectory()) {
        const sub = to.child(name);
        try {
          walk(src, sub, shown);
        } finally {
          sub.close();
        }
        continue;
      }
      if (!st.isFile()) {
        report.skipped.push(`${shown} (not a regular file)`);
        continue;
      }
      if (report.copied + report.kept >= MAX_FILES || bytes + st.size > MAX_BYTES) throw new GatehouseError('USAGE', `--home-seed ${seed} is too big (at most ${MAX_FILES} files, ${MAX_BYTES >> 20} MiB)`);
      bytes += st.size;
      if (to.createExclusive(name, readFileSync(src, 'utf8'), st.mode & 0o700)) report.copied++;
      else report.kept++;
    }
  };
  const root = SafeDir.open(home);
  try {
    walk(seed, root, '');
  } finally {
    root.close();
  }
  return report;
}

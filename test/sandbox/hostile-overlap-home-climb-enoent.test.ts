/**
 * Found by a hostile review of a speed change to canonical() (ae95c14, which
 * asked lstat before realpath and was taken back): the kernel (lstat, stat,
 * mkdir) and Node's JS realpath disagree on a symlink whose target climbs
 * with `..` after another symlink (JS: lexical, kernel: physical;
 * home-dotdot-symlink.test.ts). canonical() must take the JS realpath
 * whenever it succeeds: had it asked the kernel first, a path the kernel
 * says is missing would keep its links unresolved. run.ts canonicalizes
 * --home twice (checkExposure(…, canonical(home)), then overlaps() again),
 * so two such links get through both, the last one's kernel target a
 * harmless folder: the check passes, and prepareAgentHome() mkdirs the
 * kernel's folder and hands the launcher the JS realpath, alice's ~/.ssh,
 * bound read-write as the agent's home.
 *
 * Layout an agent plants in a folder it can write (`data`, e.g. an earlier
 * --rw) on the way to the user's `--home data/c/a/b`:
 *   data/deep/{er,t,u,v}/   real, empty folders (what the kernel reaches)
 *   data/t/, data/u/        real folders (what the JS realpath reaches)
 *   data/d   -> data/deep/er
 *   data/c   -> "d/../t"     JS: data/t   kernel: data/deep/t
 *   data/t/a -> "../d/../u"  JS: data/u   kernel: data/deep/u
 *   data/u/b -> "../d/../v"  JS: data/v   kernel: data/deep/v
 *   data/v   -> alice/.ssh
 * The kernel: data/c/a/b is data/deep/t/a/b, missing (present() false).
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareAgentHome } from '../../src/sandbox/agent-home.js';
import { canonical, overlaps, protectedPaths, type Exposed } from '../../src/sandbox/overlap.js';
import { tempDir } from '../helpers/tmp.js';

const root = tempDir('gh-hostile-climb-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('--home through links whose kernel and JS readings differ, on a path the kernel says is missing', () => {
  const alice = join(root, 'home', 'alice');
  mkdirSync(join(alice, '.ssh'), { recursive: true });
  const dirs = { state: join(root, 'state'), policies: join(root, 'pol'), registry: join(root, 'reg') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const data = join(root, 'data');
  for (const d of ['er', 't', 'u', 'v']) mkdirSync(join(data, 'deep', d), { recursive: true });
  mkdirSync(join(data, 't'));
  mkdirSync(join(data, 'u'));
  symlinkSync(join(data, 'deep', 'er'), join(data, 'd'));
  symlinkSync('d/../t', join(data, 'c'));
  symlinkSync('../d/../u', join(data, 't', 'a'));
  symlinkSync('../d/../v', join(data, 'u', 'b'));
  symlinkSync(join(alice, '.ssh'), join(data, 'v'));
  const home = join(data, 'c', 'a', 'b');
  const prot = protectedPaths(dirs, { HOME: alice }, [alice]);
  // As run.ts checkExposure() builds it: the --home canonicalized once here, once more inside overlaps().
  const exposed = (canon: (p: string) => string): Exposed[] => [{ flag: '--home', path: canon(home) }];

  it('canonical() reads it as the JS realpath does, alice/.ssh, the folder the launcher would be given', () => {
    expect(canonical(home)).toBe(join(alice, '.ssh'));
  });

  it('the check refuses it as SSH keys, and prepareAgentHome() would have handed the launcher exactly that folder', () => {
    const problems = overlaps(exposed(canonical), prot);
    expect(problems.some((p) => p.includes('SSH keys'))).toBe(true);
    // run.ts, right after the check (never reached: the check refuses first): the launcher's --home.
    expect(prepareAgentHome(home)).toBe(join(alice, '.ssh'));
  });
});

/**
 * canonical() is the JS realpath of the nearest ancestor it can resolve, the
 * rest appended (the reading prepareAgentHome() gives the launcher), and
 * overlaps() resolves each protected path only when it is compared (a
 * read-only exposure skips the write-only ones). What an attacker plants (a
 * dangling symlink, a loop, a file where a folder should be, a link that
 * climbs with `..`) reads as below, and the lazy check gives the verdicts
 * the eager one gave.
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonical, overlaps, protectedPaths, type Exposed } from '../../src/sandbox/overlap.js';
import { tempDir } from '../helpers/tmp.js';

const root = tempDir('gh-canonical-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('canonical() reads every planted path as the JS realpath does', () => {
  const real = join(root, 'real');
  mkdirSync(join(real, 'x', 'y', 'z'), { recursive: true });
  mkdirSync(join(real, 'x', 'home'));
  writeFileSync(join(real, 'file'), 'not a folder');
  symlinkSync(join(real, 'x'), join(root, 'link'));
  symlinkSync(join(root, 'nowhere'), join(root, 'dangling'));
  symlinkSync(join(root, 'loop-b'), join(root, 'loop-a'));
  symlinkSync(join(root, 'loop-a'), join(root, 'loop-b'));
  symlinkSync(join(real, 'x', 'y', 'z'), join(real, 'd'));
  // The kernel reads real/climb as real/x (d/.. is real/x/y/z/..); the JS realpath as root (real/d/../.. as text).
  symlinkSync('d/../..', join(real, 'climb'));

  const cases: [string, string, string][] = [
    ['an existing folder', join(real, 'x', 'y'), join(real, 'x', 'y')],
    ['a missing path below an existing one', join(real, 'x', 'missing', '.aws', 'credentials'), join(real, 'x', 'missing', '.aws', 'credentials')],
    ['a path through a symlink', join(root, 'link', 'y', 'z'), join(real, 'x', 'y', 'z')],
    ['a missing path through a symlink', join(root, 'link', 'missing'), join(real, 'x', 'missing')],
    ['a dangling symlink', join(root, 'dangling'), join(root, 'dangling')],
    ['a path below a dangling symlink', join(root, 'dangling', 'sub'), join(root, 'dangling', 'sub')],
    ['a symlink loop', join(root, 'loop-a'), join(root, 'loop-a')],
    ['a path below a symlink loop', join(root, 'loop-a', 'sub'), join(root, 'loop-a', 'sub')],
    ['a file where a folder should be (ENOTDIR)', join(real, 'file', 'sub'), join(real, 'file', 'sub')],
    ['a link whose target climbs with .. after another link (the JS reading, not the kernel\'s real/x/home)', join(real, 'climb', 'home'), join(root, 'home')],
    ['a relative path', 'relative/missing/path', resolve('relative/missing/path')],
    ['the root', '/', '/'],
  ];
  for (const [what, path, expected] of cases) {
    it(`${what}`, () => {
      expect(canonical(path)).toBe(expected);
    });
  }
});

describe('overlaps() resolves protected paths lazily with the same verdicts', () => {
  it('a read-only and a writable exposure of a home and of the state directory give the messages they gave', () => {
    const home = join(root, 'home', 'alice');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    mkdirSync(join(home, '.config'), { recursive: true });
    mkdirSync(join(home, 'projects'), { recursive: true });
    const dirs = { state: join(root, 'state'), policies: join(root, 'pol'), registry: join(root, 'reg') };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    const prot = protectedPaths(dirs, { HOME: home }, [home]);
    const exposures: Exposed[][] = [
      [{ flag: '--ro', path: home }],
      [{ flag: '--rw', path: home }],
      [{ flag: '--ro', path: join(home, 'projects') }],
      [{ flag: '--ro', path: dirs.state }],
      [{ flag: '--ro', path: join(home, '.config') }],
      [
        { flag: '--ro', path: join(root, 'home') },
        { flag: '--workspace', path: join(home, '.config') },
      ],
    ];
    const seen = exposures.map((e) => overlaps(e, prot));
    // A read-only view of a home is allowed except for its secrets; a writable one is refused as the home itself.
    expect(seen[0]?.some((p) => p.includes('SSH keys'))).toBe(true);
    expect(seen[0]?.some((p) => p.includes('read-write'))).toBe(false);
    expect(seen[1]?.some((p) => p.includes(`a home directory (${home}), read-write`))).toBe(true);
    expect(seen[2]).toEqual([]);
    expect(seen[3]?.some((p) => p.includes('the gateway state directory'))).toBe(true);
    expect(seen[4]?.some((p) => p.includes('GitHub CLI tokens'))).toBe(true);
    expect(seen[4]?.some((p) => p.includes('read-write'))).toBe(false);
    expect(seen[5]?.some((p) => p.startsWith('--workspace') && p.includes('read-write'))).toBe(true);
    // One check of all the exposures at once finds what the checks one by one found.
    expect(overlaps(exposures.flat(), prot).sort()).toEqual(seen.flat().sort());
  });
});

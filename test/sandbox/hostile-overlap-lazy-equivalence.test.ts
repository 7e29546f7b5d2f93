/**
 * overlaps() resolves each protected path lazily, once per check (and skips
 * write-only ones for --ro before resolving them): what it finds must not
 * depend on which exposure resolved a path first. Over a planted tree (links
 * into the state dir, into its agent homes (`except`), into a home's
 * secrets, dangling links, loops, a file where a folder should be, a
 * protected path that is itself a link, missing protected paths), checking
 * all exposures at once, in either order, gives the very messages of
 * checking each alone. A hostile review of ae95c14 compared it with the
 * eager version it replaced on this tree: identical.
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonical, overlaps, protectedPaths, type Exposed } from '../../src/sandbox/overlap.js';
import { tempDir } from '../helpers/tmp.js';

const root = tempDir('gh-hostile-lazy-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('lazy overlaps() = eager overlaps()', () => {
  const alice = join(root, 'home', 'alice');
  const bob = join(root, 'home', 'bob');
  for (const d of [join(alice, '.ssh'), join(alice, '.config', 'gh'), join(alice, 'proj'), join(bob, 'work')]) mkdirSync(d, { recursive: true });
  const state = join(root, 'state');
  mkdirSync(join(state, 'homes', 'claude', 'sub'), { recursive: true });
  const dirs = { state, policies: join(root, 'pol'), registry: join(root, 'reg') };
  mkdirSync(dirs.policies);
  symlinkSync(join(root, 'pol'), dirs.registry); // a protected path that is itself a link
  symlinkSync(join(alice, '.ssh'), join(bob, '.aws')); // bob's secret name points at alice's keys
  const w = join(root, 'w');
  mkdirSync(w);
  writeFileSync(join(w, 'file'), 'x');
  symlinkSync(state, join(w, 'to-state'));
  symlinkSync(join(state, 'homes'), join(w, 'to-homes'));
  symlinkSync(join(state, 'homes', 'claude'), join(w, 'to-claude'));
  symlinkSync(join(alice, '.ssh'), join(w, 'to-ssh'));
  symlinkSync(alice, join(w, 'to-alice'));
  symlinkSync(join(root, 'nowhere'), join(w, 'dangling'));
  symlinkSync('loop-b', join(w, 'loop-a'));
  symlinkSync('loop-a', join(w, 'loop-b'));
  const prot = protectedPaths(dirs, { HOME: alice, XDG_DATA_HOME: join(w, 'to-alice', '.local', 'share') }, [alice, bob]);
  const paths = [
    root, w, join(w, 'file', 'sub'), join(w, 'to-state'), join(w, 'to-homes'), join(w, 'to-claude'), join(w, 'to-claude', 'sub'),
    join(w, 'to-claude', 'new', 'deeper'), join(w, 'to-ssh'), join(w, 'to-alice'), join(w, 'to-alice', 'proj'), join(w, 'dangling'),
    join(w, 'dangling', 'x'), join(w, 'loop-a', 'x'), alice, join(alice, '.config'), bob, join(bob, 'work'), join(bob, '.aws', 'x'),
    dirs.registry, join(dirs.policies, 'x'), join(root, 'home'), '/', 'relative/missing',
  ];
  const flags: Exposed['flag'][] = ['--ro', '--rw', '--workspace', '--home'];
  it('each exposure alone and all at once', () => {
    const all: Exposed[] = [];
    const alone: string[] = [];
    for (const path of paths)
      for (const flag of flags) {
        all.push({ flag, path });
        alone.push(...overlaps([{ flag, path }], prot));
      }
    const found = overlaps(all, prot);
    expect(found).toEqual(alone);
    // Not vacuous: the state dir through a link is refused, an agent home through one (except) is not.
    expect(found.some((m) => m.startsWith(`--ro ${join(w, 'to-state')} is the gateway state`))).toBe(true);
    expect(found.some((m) => m.startsWith(`--rw ${join(w, 'to-claude')} `))).toBe(false);
    expect(found.some((m) => m.startsWith(`--ro ${join(bob, '.aws', 'x')} is inside SSH keys`))).toBe(true);
    // Read-only first (the write-only entries are then resolved only later, by a writable one).
    const roFirst = [...all.filter((e) => e.flag === '--ro'), ...all.filter((e) => e.flag !== '--ro')];
    const roAlone = roFirst.flatMap((e) => overlaps([e], prot));
    expect(overlaps(roFirst, prot)).toEqual(roAlone);
  });
  it('hostile-overlap-shared-resolutions: one check resolves shared ancestors once, to what each path alone resolves to', () => {
    // overlaps() hands canonical() one map per check; a path's answer must not depend on what was resolved before it.
    const every = [...paths, ...prot.map((q) => q.path), ...prot.flatMap((q) => (q.except === undefined ? [] : [q.except]))];
    for (const order of [every, [...every].reverse()]) {
      const seen = new Map<string, string | null>();
      for (const path of order) expect(canonical(path, seen), path).toBe(canonical(path));
      // Not vacuous: the ancestors were shared (each distinct path resolved once, many answers reused).
      expect(seen.size).toBeLessThan(order.length * 2);
      expect(seen.get(join(w, 'to-alice'))).toBe(alice);
      expect(seen.get(join(w, 'dangling'))).toBe(null);
    }
  });
});

/**
 * Found by a hostile review of a speed change to canonical() (ae95c14, taken
 * back): a path the kernel cannot walk (more than 40 links, or longer than
 * PATH_MAX through `s -> .` links) but Node's JS realpath can (it follows one
 * link at a time). canonical() follows it, as the JS realpath does, to
 * alice/.ssh, and the check refuses it; asking the kernel first (ELOOP,
 * ENAMETOOLONG) would have kept the links unresolved and found nothing for
 * the long path. What run.ts does next, prepareAgentHome() (kernel mkdir),
 * fails closed on it too.
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareAgentHome } from '../../src/sandbox/agent-home.js';
import { canonical, overlaps, protectedPaths } from '../../src/sandbox/overlap.js';
import { tempDir } from '../helpers/tmp.js';

const root = tempDir('gh-hostile-eloop-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('--home through more links than the kernel follows', () => {
  const alice = join(root, 'home', 'alice');
  mkdirSync(join(alice, '.ssh'), { recursive: true });
  const dirs = { state: join(root, 'state'), policies: join(root, 'pol'), registry: join(root, 'reg') };
  const data = join(root, 'data');
  mkdirSync(data);
  symlinkSync('.', join(data, 's'));
  symlinkSync(join(alice, '.ssh'), join(data, 'x'));
  const prot = protectedPaths(dirs, { HOME: alice }, [alice]);
  for (const n of [41, 2100]) {
    const home = join(data, ...Array<string>(n).fill('s'), 'x', 'new');
    it(`${n} links: read as alice/.ssh/new and refused as inside SSH keys; prepareAgentHome() fails closed on it too`, () => {
      expect(canonical(home)).toBe(join(alice, '.ssh', 'new'));
      expect(overlaps([{ flag: '--home', path: canonical(home) }], prot).some((p) => p.includes('SSH keys'))).toBe(true);
      expect(() => prepareAgentHome(home)).toThrow(/ELOOP|ENAMETOOLONG/);
    });
  }
});

/**
 * A `--home` reached through a symlink whose target climbs with `..` after
 * another symlink (data/agent -> "d/../..", data/d -> data/x/y/z): the kernel
 * and libc's realpath resolve it to data/x/home, Node's JS realpath to the
 * folder that holds the users' homes. The overlap check must judge the very
 * path the launcher is given (prepareAgentHome's), else an agent that can
 * write one folder on the way to a user's --home gets a protected folder bound
 * read-write. Found by a hostile review of a speed change to canonical().
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareAgentHome } from '../../src/sandbox/agent-home.js';
import { canonical, overlaps, protectedPaths } from '../../src/sandbox/overlap.js';
import { tempDir } from '../helpers/tmp.js';

const root = tempDir('gh-home-dotdot-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('--home through a symlink whose target climbs with ..', () => {
  it('agent plants data/agent -> "d/../..": the overlap check judges the folder the launcher gets, and refuses it', () => {
    // The victim: alice's home with her SSH keys, under root/home (standing for /home).
    const alice = join(root, 'home', 'alice');
    mkdirSync(join(alice, '.ssh'), { recursive: true });
    const dirs = { state: join(root, 'state'), policies: join(root, 'pol'), registry: join(root, 'reg') };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    // What the agent planted in a folder it can write (an earlier --rw), on the way to the user's --home.
    const data = join(root, 'data');
    mkdirSync(join(data, 'x', 'y', 'z'), { recursive: true });
    mkdirSync(join(data, 'x', 'home'));
    symlinkSync(join(data, 'x', 'y', 'z'), join(data, 'd'));
    symlinkSync('d/../..', join(data, 'agent'));
    const home = join(data, 'agent', 'home');

    const given = prepareAgentHome(home);
    expect(canonical(home)).toBe(given);
    const problems = overlaps([{ flag: '--home', path: canonical(home) }], protectedPaths(dirs, { HOME: alice }, [alice]));
    expect(problems.some((p) => p.includes('SSH keys'))).toBe(true);
  });
});

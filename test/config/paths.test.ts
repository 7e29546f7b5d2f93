import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot, resolveDirs } from '../../src/config/paths.js';
import { launcherPath } from '../../src/sandbox/launcher.js';
import { reaperPath } from '../../src/upstreams/stdio.js';
import { ROOT, tempDir } from '../helpers/gateway.js';

describe('resolveDirs: every command reads the same folders', () => {
  const cwd = tempDir('gatehouse-cwd-');
  const env = { HOME: '/home/u', GATEHOUSE_REGISTRY: '/env/registry', GATEHOUSE_POLICIES: 'env-policies', GATEHOUSE_STATE: '/env/state' };

  it('the package root is this repository', () => {
    expect(packageRoot()).toBe(ROOT);
  });

  it('the native binaries are found from the one package root', () => {
    expect(launcherPath()).toBe(join(ROOT, 'native', 'build', 'gatehouse-sandbox'));
    if (process.platform === 'linux') expect(reaperPath()).toBe(join(ROOT, 'native', 'build', 'gatehouse-reaper'));
  });

  it('a flag wins over the environment, and relative paths resolve against the working directory', () => {
    expect(resolveDirs({ registry: 'r', policies: '/abs/p', state: 's' }, env, cwd)).toEqual({ registry: join(cwd, 'r'), policies: '/abs/p', state: join(cwd, 's') });
  });

  it('the environment wins over ./registry and ./policies', () => {
    mkdirSync(join(cwd, 'registry'), { recursive: true });
    expect(resolveDirs({}, env, cwd)).toEqual({ registry: '/env/registry', policies: join(cwd, 'env-policies'), state: '/env/state' });
  });

  it('an empty flag or variable counts as not set', () => {
    expect(resolveDirs({ registry: '' }, { ...env, GATEHOUSE_STATE: '' }, cwd)).toMatchObject({ registry: '/env/registry', state: '/home/u/.local/state/gatehouse' });
  });

  it('./registry and ./policies are used when they exist, else the package’s own (the embedded default)', () => {
    const here = tempDir('gatehouse-cwd-');
    mkdirSync(join(here, 'policies'));
    expect(resolveDirs({}, { HOME: '/home/u' }, here)).toEqual({
      registry: join(ROOT, 'registry'),
      policies: join(here, 'policies'),
      state: '/home/u/.local/state/gatehouse',
    });
  });

  it('the state folder follows XDG_STATE_HOME', () => {
    expect(resolveDirs({}, { HOME: '/home/u', XDG_STATE_HOME: '/xdg' }, cwd).state).toBe('/xdg/gatehouse');
  });
});

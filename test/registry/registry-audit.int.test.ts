import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { startGateway } from '../../src/app/gateway.js';
import { readJsonLines, stdioFixture, tempDir, writeConfig } from '../helpers/gateway.js';

const readAudit = (dir: string) => readJsonLines(join(dir, 'audit.jsonl'));

let root: string | undefined;
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

describe('registry loads are audited', () => {
  it('a_valid_registry_is_recorded_with_its_connectors', async () => {
    root = tempDir();
    const dirs = writeConfig(root, [stdioFixture('fx', join(root, 'calls.jsonl'))]);
    const gw = await startGateway({ dirs, port: 0, logger: silentLogger });
    await gw.close();
    const rec = readAudit(join(dirs.state, 'audit')).find((r) => r.event === 'registry.reload');
    expect(rec).toMatchObject({ ok: true, connectors: [{ name: 'fx', kind: 'stdio' }] });
  });

  it('a_rejected_registry_is_recorded_and_the_gateway_does_not_start', async () => {
    root = tempDir();
    const dirs = writeConfig(root, []);
    writeFileSync(join(dirs.registry, 'bad.yaml'), 'name: bad\nkind: stdio\ncomand: node\n');
    await expect(startGateway({ dirs, port: 0, logger: silentLogger })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const rec = readAudit(join(dirs.state, 'audit')).find((r) => r.event === 'registry.reload');
    expect(rec).toMatchObject({ ok: false });
    expect(String(rec?.error)).toMatch(/bad\.yaml:3:1: comand: unknown key/);
  });
});

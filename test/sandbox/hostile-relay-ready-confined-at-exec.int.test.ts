/**
 * Found by a hostile review of 6756508: "the command never runs next to a
 * relay that is not yet confined", observed directly. relay-ready.int.test.ts
 * delays the relay before its first confinement step only, so a relay that
 * wrote its "ready" byte before confining itself would still pass it: the
 * relay's confinement takes ~2 ms, the command's exec longer. Here the ASan
 * build's hook holds the relay half confined (chrooted, nothing else yet) for
 * 1.5 s; when the command prints its first line, the relay must be chrooted,
 * capability-less, no_new_privs and under seccomp.
 */
import { mkdirSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD, childrenOf, launch, scratch, statusField, type Scratch } from '../helpers/sandbox-launch.js';

const ASAN = join(BUILD, 'gatehouse-sandbox-asan');
let s: Scratch;
let ws: string;

beforeAll(async () => {
  s = await scratch('gh-hostile-relay-confined-');
  ws = join(s.root, 'ws');
  mkdirSync(ws);
});

afterAll(async () => {
  await s.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hostile: the relay is confined when the command starts', () => {
  it('with the relay held 1.5 s half confined (chrooted only), the command starts only after, next to a confined relay', async () => {
    const run = launch(s, ws, [], ['/bin/sh', '-c', 'echo command-started; sleep 1'], { env: { GATEHOUSE_SANDBOX_TEST_RELAY_CONFINE_MS: '1500' }, launcher: ASAN });
    const child = run.child;
    try {
      // The relay: the launcher's child outside the new pid namespace (one NSpid).
      let relay: number | undefined;
      for (let end = Date.now() + 5_000; relay === undefined && Date.now() < end; await sleep(5)) {
        relay = childrenOf(child.pid!).find((k) => statusField(k, 'NSpid')?.split(/\s+/).length === 1);
      }
      expect(relay).toBeDefined();
      const seen = Date.now();

      await run.line(/command-started/, 20_000);
      // The relay, as the command runs: confined, every step.
      const state = {
        seccomp: statusField(relay!, 'Seccomp'),
        noNewPrivs: statusField(relay!, 'NoNewPrivs'),
        capEff: statusField(relay!, 'CapEff'),
        capPrm: statusField(relay!, 'CapPrm'),
        root: readlinkSync(`/proc/${relay}/root`),
      };
      const waited = Date.now() - seen;
      expect(state).toEqual({ seccomp: '2', noNewPrivs: '1', capEff: '0000000000000000', capPrm: '0000000000000000', root: dirname(s.socket) });
      expect(waited).toBeGreaterThanOrEqual(1_000); // the command waited out the half-confined relay
      const r = await run.done;
      expect(r.code).toBe(0);
      expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/**
 * Approvals and grants across a restart, on a real state directory: a new
 * Approvals over the same folder is what a restarted gateway builds.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { approvalStateIn } from '../../src/policy/approval-state.js';
import { Approvals, type ApprovalEvent } from '../../src/policy/approvals.js';
import type { Decision } from '../../src/policy/types.js';
import { FakeClock } from './fake-clock.js';
import { call, tmpDir } from './helpers.js';

const ask: Decision = { effect: 'ask', ruleId: 'posting-needs-a-human', message: 'A human decides.', ask: { timeoutMs: 300_000, grant: { ttlMs: 3_600_000, maxUses: 3 } } };
const slack = call({ connector: 'slack', tool: 'slack__post_message', upstreamTool: 'post_message', args: { channel: '#general', text: 'hi' } });

const dirs: string[] = [];
const booted: Approvals[] = [];
afterEach(async () => {
  // Saves run in the background: let them land before the folders go.
  await Promise.all(booted.splice(0).map((a) => a.flushed()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = tmpDir();
  dirs.push(d);
  return d;
}

/** A gateway's Approvals over `dir` (a new one = the gateway restarted). */
function boot(dir: string, clock = new FakeClock()) {
  const events: ApprovalEvent[] = [];
  const approvals = new Approvals({ clock, state: approvalStateIn(dir), onEvent: (e) => events.push(e) });
  booted.push(approvals);
  return { approvals, events, clock };
}

const file = (dir: string) => join(dir, 'approvals', 'approvals.json');
const saved = (dir: string) => JSON.parse(readFileSync(file(dir), 'utf8')) as { grants: Array<{ uses: number }>; pending: unknown[]; withdrawn: unknown[] };

/** Approves the first pending call with a grant; returns the grant. */
async function grantOne(a: Approvals, maxUses = 3) {
  const p = a.request(slack, ask, { text: 'hi' });
  // A pending approval is shown once it is saved.
  await a.flushed();
  const { grant } = await a.approve(a.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 3_600_000, maxUses } });
  await expect(p).resolves.toMatchObject({ approved: true });
  if (grant === undefined) throw new Error('no grant');
  return grant;
}

describe('approval state across restarts', () => {
  it('gateway restarts: a grant given before still covers calls, with the same expiry and the uses left', async () => {
    const dir = stateDir();
    const first = boot(dir);
    const grant = await grantOne(first.approvals);
    await expect(first.approvals.request(slack, ask, {})).resolves.toMatchObject({ approved: true, grantId: grant.id });
    // Crash: no close(). The next gateway reads what is on disk.
    const second = boot(dir, first.clock);
    expect(second.approvals.grants()).toMatchObject([{ id: grant.id, uses: 1, maxUses: 3, expiresAt: grant.expiresAt, by: 'alice' }]);
    await expect(second.approvals.request(slack, ask, {})).resolves.toMatchObject({ approved: true, grantId: grant.id });
    await expect(second.approvals.request(slack, ask, {})).resolves.toMatchObject({ approved: true, grantId: grant.id });
    // Used up: the next call asks a human again.
    void second.approvals.request(slack, ask, {});
    await second.approvals.flushed();
    expect(second.approvals.list()).toHaveLength(1);
    expect(second.approvals.grants()).toEqual([]);
  });

  it('a restart does not refill uses: each use is on disk before the call goes through', async () => {
    const dir = stateDir();
    const { approvals } = boot(dir);
    await grantOne(approvals);
    expect(saved(dir).grants[0]?.uses).toBe(0);
    await approvals.request(slack, ask, {});
    expect(saved(dir).grants[0]?.uses).toBe(1);
    await approvals.request(slack, ask, {});
    expect(saved(dir).grants[0]?.uses).toBe(2);
  });

  it('a burst of grant uses costs a few writes, and each call goes through only once its use is on disk', async () => {
    const dir = stateDir();
    const store = approvalStateIn(dir);
    let writes = 0;
    const counting = { ...store, file: store.file, save: async (snap: Parameters<typeof store.save>[0]) => {
      writes++;
      await store.save(snap);
    } };
    const approvals = new Approvals({ clock: new FakeClock(), state: counting });
    booted.push(approvals);
    const p = approvals.request(slack, ask, {});
    await approvals.flushed();
    await approvals.approve(approvals.list()[0]?.id ?? '', { by: 'alice', grant: { ttlMs: 3_600_000, maxUses: 3 } });
    await p;
    const before = writes;
    const outcomes = await Promise.all(
      Array.from({ length: 3 }, () =>
        approvals.request(slack, ask, {}).then((o) => ({ o, onDisk: saved(dir).grants[0]?.uses ?? 'spent (grant dropped)' })),
      ),
    );
    for (const { o, onDisk } of outcomes) {
      expect(o.approved).toBe(true);
      // Either the file counts every use so far, or the grant is already gone from it (used up): never fewer uses.
      expect(typeof onDisk === 'string' || onDisk >= Number(/\((\d+)\//.exec(o.reason)?.[1])).toBe(true);
    }
    expect(writes - before).toBeLessThan(3);
    expect(saved(dir).grants).toEqual([]);
  });

  it('a grant whose ttl passed while the gateway was down is gone after the restart (and reported)', async () => {
    const dir = stateDir();
    const first = boot(dir);
    await grantOne(first.approvals);
    first.clock.t += 3_600_001;
    const second = boot(dir, first.clock);
    expect(second.approvals.grants()).toEqual([]);
    expect(second.events).toContainEqual(expect.objectContaining({ type: 'grant_expired', reason: 'ttl' }));
  });

  it('a revoked grant stays revoked after a restart', async () => {
    const dir = stateDir();
    const first = boot(dir);
    const grant = await grantOne(first.approvals);
    await first.approvals.revokeGrant(grant.id);
    expect(boot(dir, first.clock).approvals.grants()).toEqual([]);
  });

  it('gateway restarts with a call waiting for approval: it is reported withdrawn, can never be approved, and is listed with the reason', async () => {
    const dir = stateDir();
    const first = boot(dir);
    void first.approvals.request(slack, ask, { text: 'post this' });
    await first.approvals.flushed();
    const id = first.approvals.list()[0]?.id ?? '';
    expect(saved(dir).pending).toHaveLength(1);
    const second = boot(dir, first.clock);
    expect(second.approvals.list()).toEqual([]);
    expect(second.events).toContainEqual({ type: 'withdrawn', approval: expect.objectContaining({ id }), reason: expect.stringContaining('the gateway restarted') });
    expect(second.approvals.withdrawn()).toMatchObject([{ id, args: { text: 'post this' }, reason: expect.stringContaining('its caller is gone') }]);
    await expect(second.approvals.approve(id, { by: 'alice' })).rejects.toThrow(/was withdrawn .*the gateway restarted/);
    // Still listed after another restart, until it ages out (a day).
    await second.approvals.flushed();
    const third = boot(dir, first.clock);
    expect(third.approvals.withdrawn().map((w) => w.id)).toEqual([id]);
    await third.approvals.flushed();
    first.clock.t += 86_400_001;
    expect(boot(dir, first.clock).approvals.withdrawn()).toEqual([]);
  });

  it('a graceful stop withdraws what waits and keeps the grants for the next start', async () => {
    const dir = stateDir();
    const first = boot(dir);
    const grant = await grantOne(first.approvals);
    const waiting = first.approvals.request(call({ tool: 'slack__other' }), ask, {});
    await first.approvals.close();
    await expect(waiting).resolves.toMatchObject({ approved: false });
    expect(first.events.at(-1)).toMatchObject({ type: 'withdrawn', reason: expect.stringContaining('shut down') });
    const second = boot(dir, first.clock);
    expect(second.approvals.grants().map((g) => g.id)).toEqual([grant.id]);
    expect(second.approvals.withdrawn()).toHaveLength(1);
  });

  it('the state is a 0600 file in a 0700 folder, replaced whole (no temp files left)', async () => {
    const dir = stateDir();
    mkdirSync(join(dir, 'approvals'), { mode: 0o755 });
    const { approvals } = boot(dir);
    await grantOne(approvals);
    expect(statSync(join(dir, 'approvals')).mode & 0o777).toBe(0o700);
    expect(statSync(file(dir)).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'approvals'))).toEqual(['approvals.json']);
  });

  it('a huge argument is not copied into the state file (an agent cannot bloat it)', async () => {
    const dir = stateDir();
    const { approvals } = boot(dir);
    void approvals.request(slack, ask, { text: 'x'.repeat(2_000_000), more: Array.from({ length: 50 }, (_, i) => 'y'.repeat(900) + String(i)) });
    await approvals.flushed();
    expect(statSync(file(dir)).size).toBeLessThan(16_384);
    expect(approvals.list()[0]?.args['text']).toHaveLength(2_000_000);
  });
});

describe('a corrupt or untrusted state file', () => {
  const grantFile = async (dir: string) => {
    await grantOne(boot(dir).approvals);
    return readFileSync(file(dir), 'utf8');
  };

  const cases: Array<[string, (dir: string, good: string) => void, RegExp]> = [
    ['not JSON', (d) => writeFileSync(file(d), '{"version":1,', { mode: 0o600 }), /is not valid JSON/],
    ['an unknown key', (d, good) => writeFileSync(file(d), good.replace('"version":1', '"version":1,"extra":true')), /invalid: extra: unknown key "extra" \(misspelt\?\)/],
    ['uses above maxUses', (d, good) => writeFileSync(file(d), good.replace('"uses":0', '"uses":99')), /uses is greater than maxUses/],
    ['a negative use count', (d, good) => writeFileSync(file(d), good.replace('"uses":0', '"uses":-5')), /grants\[0\]\.uses/],
    ['another version', (d, good) => writeFileSync(file(d), good.replace('"version":1', '"version":2')), /version/],
    ['writable by others', (d) => chmodSync(file(d), 0o666), /may be written by others.*600/],
  ];

  it.each(cases)('corrupt grants file (%s): the gateway starts, grants nothing, and says which file', async (_name, spoil, why) => {
    const dir = stateDir();
    const good = await grantFile(dir);
    spoil(dir, good);
    const { approvals, events } = boot(dir);
    await approvals.flushed();
    expect(approvals.grants()).toEqual([]);
    const ev = events.find((e) => e.type === 'state_rejected');
    expect(ev).toMatchObject({ type: 'state_rejected', file: file(dir) });
    expect((ev as { error: string }).error).toContain(file(dir));
    expect((ev as { error: string }).error).toMatch(why);
    // Kept for the admin, moved out of the way; a fresh, valid file replaces it.
    const movedTo = (ev as { movedTo?: string }).movedTo ?? '';
    expect(existsSync(movedTo)).toBe(true);
    expect(saved(dir).grants).toEqual([]);
  });

  it('a symlink planted as the grants file is not followed: no grants, and its target is untouched', async () => {
    const dir = stateDir();
    const good = await grantFile(dir);
    const elsewhere = join(stateDir(), 'forged.json');
    writeFileSync(elsewhere, good, { mode: 0o600 });
    rmSync(file(dir));
    symlinkSync(elsewhere, file(dir));
    const { approvals, events } = boot(dir);
    await approvals.flushed();
    expect(approvals.grants()).toEqual([]);
    expect(events.find((e) => e.type === 'state_rejected')).toMatchObject({ error: expect.stringContaining('is a symlink') });
    expect(readFileSync(elsewhere, 'utf8')).toBe(good);
    expect(lstatSync(file(dir)).isSymbolicLink()).toBe(false);
  });
});

describe('a planted approvals folder', () => {
  it('the approvals folder replaced by a symlink to forged grants: nothing is loaded and nothing is written through it', async () => {
    const dir = stateDir();
    await grantOne(boot(dir).approvals);
    const forged = stateDir();
    const good = readFileSync(file(dir), 'utf8');
    mkdirSync(join(forged, 'approvals'));
    writeFileSync(join(forged, 'approvals', 'approvals.json'), good, { mode: 0o600 });
    rmSync(join(dir, 'approvals'), { recursive: true });
    symlinkSync(join(forged, 'approvals'), join(dir, 'approvals'));
    const { approvals, events } = boot(dir);
    await approvals.flushed();
    expect(approvals.grants()).toEqual([]);
    expect(events.find((e) => e.type === 'state_rejected')).toMatchObject({ error: expect.stringContaining('which is a symlink') });
    expect(events.some((e) => e.type === 'state_error')).toBe(true);
    expect(readFileSync(join(forged, 'approvals', 'approvals.json'), 'utf8')).toBe(good);
  });
});

describe('when the state cannot be written, nothing that gives a permission takes effect', () => {
  /** Replaces the state folder with a plain file: every save fails for real. */
  const breakState = (dir: string) => {
    rmSync(join(dir, 'approvals'), { recursive: true });
    writeFileSync(join(dir, 'approvals'), 'not a folder');
  };

  it('a grant whose use cannot be saved does not let the call through', async () => {
    const dir = stateDir();
    const { approvals, events } = boot(dir);
    await grantOne(approvals);
    breakState(dir);
    await expect(approvals.request(slack, ask, {})).resolves.toMatchObject({ approved: false, reason: expect.stringContaining('cannot be recorded') });
    expect(events).toContainEqual(expect.objectContaining({ type: 'state_error' }));
    // Fail closed: the use is spent (it may or may not have reached the disk).
    expect(approvals.grants()[0]?.uses).toBe(1);
  });

  it('an approval with a grant that cannot be saved approves the one call but gives no grant (STATE_UNAVAILABLE); a new ask is refused', async () => {
    const dir = stateDir();
    const { approvals } = boot(dir);
    const waiting = approvals.request(slack, ask, {});
    await approvals.flushed();
    breakState(dir);
    const id = approvals.list()[0]?.id ?? '';
    await expect(approvals.approve(id, { by: 'alice', grant: { ttlMs: 60_000, maxUses: 2 } })).rejects.toThrow(expect.objectContaining({ code: 'STATE_UNAVAILABLE' }));
    await expect(waiting).resolves.toMatchObject({ approved: true });
    expect(approvals.grants()).toEqual([]);
    // The grant never covers a call.
    const next = approvals.request(slack, ask, {});
    await expect(next).resolves.toMatchObject({ approved: false });
    const refused = await approvals.request(call({ tool: 'slack__x' }), ask, {});
    expect(refused).toMatchObject({ approved: false, reason: expect.stringContaining('cannot save its approval state') });
    // What the agent is told names no host path.
    expect(refused.reason).not.toContain(dir);
  });
});

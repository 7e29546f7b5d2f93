/**
 * The rotated files' block indexes (sidecars) only make queries faster: the
 * same pages (records, cursors, "more") with and without them, for any
 * filter; and a sidecar that is stale, corrupt, forged or copied from
 * another file is not used, so it can never hide a record.
 */
import { cpSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasValidIndex, indexKey, readIndex, sidecarPath, summarizeFile, writeIndex, type BlockIndex } from '../../src/audit/block-index.js';
import { indexTests, planBlock } from '../../src/audit/indexed-scan.js';
import { listAuditFiles } from '../../src/audit/files.js';
import { ScanPool } from '../../src/audit/pool.js';
import { queryAudit, type AuditFilters, type QueryPage } from '../../src/audit/query.js';
import { deleteRotated } from '../../src/audit/retention.js';
import { tempDir } from '../helpers/tmp.js';
import { lines, openLog, tempState, writeLines } from './helpers.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const AGENTS = ['agent-a', 'agent-b', 'agent-c', 'agent-rare', 'agent "quoted"'];
const TOOLS = ['github__create_issue', 'slack__post_message', 'jira__search', 'jira__create'];
let template: string;

beforeAll(async () => {
  const { state, dir } = tempState();
  let tick = 0;
  const log = await openLog(dir, { maxFileBytes: 96 * 1024, checkpointEvery: 50, now: () => new Date(T0 + tick++ * 1000) });
  for (let i = 0; i < 1500; i++) {
    const tool = TOOLS[(i * 7) % TOOLS.length] as string;
    const agent = i % 97 === 5 ? 'agent-rare' : (AGENTS[i % 3] as string);
    if (i % 11 === 0) {
      // A forwarded call: its intent, and (mostly) its outcome.
      await log.append({ event: 'tools/call.intent', call: `c${i}`, agent, tool });
      if (i % 33 !== 0) await log.append({ event: 'tools/call', call: `c${i}`, agent, tool, connector: tool.split('__')[0], decision: 'allow', outcome: 'ok' });
      continue;
    }
    const deny = i % 13 === 0;
    await log.append({
      event: i % 50 === 0 ? 'model.call' : 'tools/call',
      agent: i % 200 === 3 ? 'agent "quoted"' : agent,
      session: `s-${Math.floor(i / 40)}`,
      tool,
      connector: tool.split('__')[0],
      decision: deny ? 'deny' : 'allow',
      outcome: deny ? 'denied' : i % 17 === 0 ? 'error' : 'ok',
      args: { n: i, text: `needle-${i % 10} é` },
    });
  }
  await log.close();
  template = state;
  expect(listAuditFiles(dir).filter((f) => !f.current).length).toBeGreaterThan(4);
});

/** A copy of the template log without its sidecars. */
function copy(): { dir: string } {
  const state = tempDir('gh-bidx-');
  cpSync(template, state, { recursive: true, filter: (src) => !src.endsWith('.idx') });
  return { dir: join(state, 'audit') };
}

/** Sidecars for every rotated file, with small blocks (so a file has many). */
async function buildSidecars(dir: string, blockLines: number): Promise<void> {
  const key = indexKey(dir) as Buffer;
  for (const f of listAuditFiles(dir).filter((x) => !x.current)) writeIndex(f.path, await summarizeFile(f.path, f.size, blockLines), key);
}

/** Every page of a query, as the caller sees them. */
async function pages(dir: string, filters: AuditFilters, order: 'asc' | 'desc', limit: number, index: boolean): Promise<QueryPage[]> {
  const out: QueryPage[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < 500; n++) {
    const page = await queryAudit(dir, filters, { order, limit, index, ...(cursor !== undefined ? { cursor } : {}) });
    out.push(page);
    if (!page.more || page.nextCursor === null) break;
    cursor = page.nextCursor;
  }
  return out;
}

const filterArb: fc.Arbitrary<AuditFilters> = fc
  .record(
    {
      agent: fc.constantFrom(...AGENTS, 'nobody'),
      session: fc.constantFrom('s-0', 's-7', 's-30', 's-none'),
      connector: fc.constantFrom('github', 'slack', 'jira'),
      tool: fc.constantFrom('jira__*', 'github__create_issue', '*__create*', 'nothing__*'),
      decision: fc.constantFrom('allow', 'deny'),
      outcome: fc.constantFrom('ok', 'error', 'denied', 'pending', 'unknown'),
      event: fc.constantFrom('tools/call', 'model.*', 'tools/call.intent', 'audit.checkpoint'),
      since: fc.integer({ min: 0, max: 1700 }).map((s) => new Date(T0 + s * 1000)),
      until: fc.integer({ min: 0, max: 1700 }).map((s) => new Date(T0 + s * 1000)),
      grep: fc.constantFrom('needle-3', 'é', '"quoted"'),
    },
    { requiredKeys: [] },
  )
  .filter((f) => Object.keys(f).length > 0);

describe('query results are the same with and without block indexes', () => {
  it('property: any filters, either order, any page size, blocks of any size', async () => {
    const dirs = new Map<number, string>();
    for (const n of [16, 64, 300]) {
      const { dir } = copy();
      await buildSidecars(dir, n);
      const key = indexKey(dir) as Buffer;
      expect(listAuditFiles(dir).filter((f) => !f.current).every((f) => hasValidIndex(f.path, key))).toBe(true);
      dirs.set(n, dir);
    }
    await fc.assert(
      fc.asyncProperty(filterArb, fc.constantFrom<'asc' | 'desc'>('asc', 'desc'), fc.integer({ min: 1, max: 400 }), fc.constantFrom(16, 64, 300), async (filters, order, limit, n) => {
        const dir = dirs.get(n) as string;
        const scanned = await pages(dir, filters, order, limit, false);
        const indexed = await pages(dir, filters, order, limit, true);
        expect(indexed).toEqual(scanned);
      }),
      { numRuns: 80 },
    );
  });

  it('the index does narrow: blocks skipped, rare values read line by line (guards the property above against an index that narrows nothing)', async () => {
    const { dir } = copy();
    await buildSidecars(dir, 64);
    const key = indexKey(dir) as Buffer;
    const plans = listAuditFiles(dir)
      .filter((f) => !f.current)
      .flatMap((f) => (readIndex(f.path, key) as BlockIndex).blocks.map((b) => planBlock(b, indexTests({ agent: 'agent-rare' }) as NonNullable<ReturnType<typeof indexTests>>)));
    expect(plans.filter((p) => p === 'skip').length).toBeGreaterThan(0);
    expect(plans.filter((p) => Array.isArray(p)).length).toBeGreaterThan(0);
    const byTime = (readIndex((listAuditFiles(dir)[0] as { path: string }).path, key) as BlockIndex).blocks.map((b) => planBlock(b, { tests: [], since: new Date(T0 + 1_000_000).toISOString() }));
    expect(byTime.every((p) => p === 'skip')).toBe(true);
  });

  it('the first filtered query builds the missing sidecars; later ones use them; results do not change', async () => {
    const { dir } = copy();
    const rotated = listAuditFiles(dir).filter((f) => !f.current);
    const key = indexKey(dir) as Buffer;
    expect(rotated.some((f) => hasValidIndex(f.path, key))).toBe(false);
    const want = await pages(dir, { agent: 'agent-rare' }, 'desc', 7, false);
    expect(want.flatMap((p) => p.records).length).toBeGreaterThan(5);
    expect(await pages(dir, { agent: 'agent-rare' }, 'desc', 7, true)).toEqual(want);
    expect(rotated.every((f) => hasValidIndex(f.path, key))).toBe(true);
    expect(await pages(dir, { agent: 'agent-rare' }, 'desc', 7, true)).toEqual(want);
  });

  it('the writer indexes each file it rotates (queries need not build them)', async () => {
    const { state, dir } = tempState();
    const log = await openLog(dir, { maxFileBytes: 16 * 1024 });
    for (let i = 0; i < 400; i++) await log.append({ event: 'tools/call', agent: `agent-${i % 4}`, tool: 'jira__search', args: { i } });
    await log.close();
    const key = indexKey(dir) as Buffer;
    const rotated = listAuditFiles(dir).filter((f) => !f.current);
    expect(rotated.length).toBeGreaterThan(3);
    expect(rotated.every((f) => hasValidIndex(f.path, key))).toBe(true);
    expect(readFileSync(join(state, 'keys', 'audit-index.key'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a worker thread builds the same index as this thread (big files are indexed in workers)', async () => {
    const { dir } = copy();
    const f = listAuditFiles(dir)[1] as { path: string; size: number };
    const pool = new ScanPool(1);
    try {
      expect(await pool.run({ kind: 'index', path: f.path, size: f.size })).toEqual(await summarizeFile(f.path, f.size));
    } finally {
      await pool.close();
    }
  });

  it('a query without an indexable filter (none, or --grep only) builds nothing', async () => {
    const { dir } = copy();
    await queryAudit(dir, { grep: 'needle-1' }, { limit: 5 });
    await queryAudit(dir, {}, { limit: 5 });
    const key = indexKey(dir) as Buffer;
    expect(listAuditFiles(dir).some((f) => hasValidIndex(f.path, key))).toBe(false);
  });

  it('no keys folder next to the log: no sidecars, same results', async () => {
    const { dir } = copy();
    rmSync(join(dir, '..', 'keys'), { recursive: true });
    const want = await pages(dir, { tool: 'jira__*', outcome: 'error' }, 'asc', 50, false);
    expect(await pages(dir, { tool: 'jira__*', outcome: 'error' }, 'asc', 50, true)).toEqual(want);
    expect(indexKey(dir)).toBeUndefined();
  });
});

describe('a sidecar is never trusted over the log', () => {
  /** The rare agent's records, by a full scan; and a copy whose sidecars say the agent is nowhere. */
  async function forged(rewrite: (text: string, macLine: string, path: string) => string): Promise<{ dir: string; want: QueryPage[] }> {
    const { dir } = copy();
    await buildSidecars(dir, 16);
    for (const f of listAuditFiles(dir).filter((x) => !x.current)) {
      const raw = readFileSync(sidecarPath(f.path), 'utf8');
      const nl = raw.indexOf('\n');
      writeFileSync(sidecarPath(f.path), rewrite(raw.slice(nl + 1), raw.slice(0, nl), f.path));
    }
    return { dir, want: await pages(dir, { agent: 'agent-rare' }, 'asc', 100, false) };
  }
  const hide = (text: string) => text.replaceAll('"agent-rare"', '"agent-xxxx"');

  it('hostile sidecar attack: one edited to say a rare agent is in no block (HMAC no longer matches) hides nothing', async () => {
    const { dir, want } = await forged((text, mac) => `${mac}\n${hide(text)}`);
    expect(want.flatMap((p) => p.records).length).toBeGreaterThan(3);
    expect(await pages(dir, { agent: 'agent-rare' }, 'asc', 100, true)).toEqual(want);
  });

  it('hostile sidecar attack: one re-signed with a key of the attacker\'s own hides nothing', async () => {
    const { createHmac } = await import('node:crypto');
    const { dir, want } = await forged((text) => `${createHmac('sha256', Buffer.alloc(32, 7)).update(hide(text)).digest('hex')}\n${hide(text)}`);
    expect(await pages(dir, { agent: 'agent-rare' }, 'asc', 100, true)).toEqual(want);
  });

  it('hostile sidecar attack: a valid sidecar of another file copied over this one\'s is not used', async () => {
    const { dir } = copy();
    await buildSidecars(dir, 16);
    const rotated = listAuditFiles(dir).filter((x) => !x.current);
    const key = indexKey(dir) as Buffer;
    const other = readFileSync(sidecarPath((rotated[0] as { path: string }).path));
    for (const f of rotated.slice(1)) writeFileSync(sidecarPath(f.path), other);
    expect(hasValidIndex((rotated[1] as { path: string }).path, key)).toBe(false);
    expect(await pages(dir, { agent: 'agent-rare' }, 'desc', 100, true)).toEqual(await pages(dir, { agent: 'agent-rare' }, 'desc', 100, false));
  });

  it('corrupt sidecars (empty, cut short, not JSON, a mangled block) are ignored and rebuilt', async () => {
    const variants: ((text: string, mac: string) => string)[] = [
      () => '',
      (text, mac) => `${mac}\n${text.slice(0, text.length >> 1)}`,
      () => 'garbage\n{',
      (text, mac) => `${mac}\n${text.replace('"o":0', '"o":5')}`,
    ];
    expect(variants.length).toBeGreaterThan(0);
    for (const v of variants) {
      const { dir, want } = await forged(v);
      expect(await pages(dir, { agent: 'agent-rare' }, 'asc', 100, true)).toEqual(want);
      const key = indexKey(dir) as Buffer;
      expect(listAuditFiles(dir).filter((f) => !f.current).every((f) => hasValidIndex(f.path, key))).toBe(true);
    }
  });

  it('stale sidecar attack: a rotated file edited in place (same size, mtime put back) is read, not skipped by its old index', async () => {
    const { dir } = copy();
    await buildSidecars(dir, 16);
    const f = listAuditFiles(dir).filter((x) => !x.current)[2] as { path: string };
    const st = statSync(f.path);
    const ls = lines(f.path);
    const i = ls.findIndex((l) => l.includes('"agent":"agent-a"'));
    ls[i] = (ls[i] as string).replace('"agent":"agent-a"', '"agent":"agent-z"');
    writeLines(f.path, ls);
    utimesSync(f.path, st.atime, st.mtime);
    expect(statSync(f.path).size).toBe(st.size);
    const want = await pages(dir, { agent: 'agent-z' }, 'asc', 10, false);
    expect(want[0]?.records).toHaveLength(1);
    expect(await pages(dir, { agent: 'agent-z' }, 'asc', 10, true)).toEqual(want);
  });

  it('retention deletes a rotated file\'s sidecar with it', async () => {
    const { dir } = copy();
    await buildSidecars(dir, 16);
    const first = listAuditFiles(dir)[0] as Parameters<typeof deleteRotated>[1][number];
    deleteRotated(dir, [first]);
    expect(() => statSync(sidecarPath(first.path))).toThrow();
  });
});

/**
 * Where pending approvals and grants are kept across restarts:
 * `<state>/approvals/approvals.json` (0600 in a 0700 directory), replaced
 * durably on every change. Loaded with a strict schema: a file that does not
 * parse, has an unknown key or an impossible value, is a symlink, or may be
 * written by others is rejected as a whole (the caller then starts with no
 * grants: fail closed) and moved aside for the admin to inspect.
 */
import { lstatSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { formatZodIssues } from '../config/zod-issues.js';
import type { Grant, PendingApproval, WithdrawnApproval } from './approvals.js';
import { ensurePrivateDir, readPrivateFile, writeFileDurably } from './durable-file.js';

export interface ApprovalsSnapshot {
  pending: PendingApproval[];
  grants: Grant[];
  withdrawn: WithdrawnApproval[];
}

/** Persistence for Approvals. */
export interface ApprovalStateStore {
  /** The file, for messages. */
  readonly file: string;
  /** undefined: nothing saved yet. Throws an Error naming the file when it cannot be trusted. Synchronous: runs once, at start. */
  load(): ApprovalsSnapshot | undefined;
  /** Replaces the saved state durably; rejects on failure (the previous state is then intact). */
  save(snapshot: ApprovalsSnapshot): Promise<void>;
  /** Moves the file aside after load() rejected it; returns where it went (undefined if it could not be moved). */
  quarantine(now: Date): string | undefined;
}

const Time = z.iso.datetime();
const Name = z.string().min(1).max(1_000);
const GrantLimit = z.strictObject({ ttlMs: z.number().int().positive(), maxUses: z.number().int().min(1) });
const CallerKind = z.enum(['agent', 'connector']);
const Host = z.string().min(1).max(253);
const Port = z.number().int().min(1).max(65_535);
const EgressAsk = z.strictObject({
  caller: z.strictObject({ kind: CallerKind, name: Name }),
  host: Host,
  port: Port,
  method: z.string().min(1).max(20).optional(),
  path: z.string().max(1_100).optional(),
  sandbox: Name.optional(),
});
const EgressScope = z.strictObject({ caller: CallerKind, host: Host, port: Port, sandbox: Name.optional(), tunnel: z.boolean().optional() });

const PendingFields = {
  id: z.string().regex(/^ap_[0-9a-f]{10}$/),
  agent: Name,
  connector: Name,
  tool: Name,
  upstreamTool: Name,
  ruleId: Name.nullable(),
  message: z.string().max(10_000),
  args: z.record(z.string(), z.json()),
  requestedAt: Time,
  expiresAt: Time,
  grantLimit: GrantLimit.optional(),
  egress: EgressAsk.optional(),
};
const Pending = z.strictObject(PendingFields);
const Withdrawn = z.strictObject({ ...PendingFields, withdrawnAt: Time, reason: z.string().max(1_000) });
const GrantSchema = z
  .strictObject({
    id: z.string().regex(/^gr_[0-9a-f]{10}$/),
    agent: Name,
    ruleId: Name.nullable(),
    tool: Name,
    by: Name,
    approvalId: z.string().regex(/^ap_[0-9a-f]{10}$/),
    createdAt: Time,
    expiresAt: Time,
    maxUses: z.number().int().min(1),
    uses: z.number().int().min(0),
    egress: EgressScope.optional(),
  })
  .refine((g) => g.uses <= g.maxUses, { message: 'uses is greater than maxUses' });

const StateFile = z.strictObject({
  version: z.literal(1),
  savedAt: Time,
  pending: z.array(Pending),
  grants: z.array(GrantSchema),
  withdrawn: z.array(Withdrawn),
});

// exactOptionalPropertyTypes: zod's optional keys may hold undefined; ours may not (JSON never holds undefined, so this only drops keys).
function withoutUndefined<T>(v: T): T {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, withoutUndefined(x)])) as T;
}

export const APPROVALS_FILE = 'approvals.json';

/** The approval state of a gateway whose state directory is `stateDir`. */
export function approvalStateIn(stateDir: string): ApprovalStateStore {
  const dir = join(stateDir, 'approvals');
  const file = join(dir, APPROVALS_FILE);
  return {
    file,
    load() {
      let text: string | undefined;
      try {
        if (lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink() === true) throw new Error(`is in ${dir}, which is a symlink`);
        text = readPrivateFile(file);
      } catch (e) {
        throw new Error(`approval state ${file} ${(e as Error).message}`);
      }
      if (text === undefined) return undefined;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        throw new Error(`approval state ${file} is not valid JSON (${(e as Error).message})`);
      }
      const parsed = StateFile.safeParse(raw);
      if (!parsed.success) {
        throw new Error(`approval state ${file} is invalid: ${formatZodIssues(parsed.error.issues, 3)}`);
      }
      const s = parsed.data;
      return {
        pending: s.pending.map((p) => withoutUndefined(p) as PendingApproval),
        grants: s.grants.map((g) => withoutUndefined(g) as Grant),
        withdrawn: s.withdrawn.map((w) => withoutUndefined(w) as WithdrawnApproval),
      };
    },
    async save(snapshot) {
      ensurePrivateDir(dir);
      await writeFileDurably(dir, APPROVALS_FILE, `${JSON.stringify({ version: 1, savedAt: new Date().toISOString(), ...snapshot })}\n`);
    },
    quarantine(now) {
      const aside = `${file}.rejected-${now.toISOString().replace(/[:.]/g, '-')}`;
      try {
        // Not through a planted link: leave that for the admin.
        if (lstatSync(dir).isSymbolicLink()) return undefined;
        renameSync(file, aside);
        return aside;
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * Saves one at a time and coalesces: `save()` resolves once a snapshot taken
 * after the call is on disk, and rejects when that write failed. Changes made
 * while a write runs share the next one, so a burst of grant uses costs a few
 * fsyncs, not one each.
 */
export class StateWriter {
  readonly #store: ApprovalStateStore;
  readonly #snapshot: () => ApprovalsSnapshot;
  readonly #onError: (e: Error) => void;
  /** The write that has not taken its snapshot yet: later changes join it. */
  #queued: Promise<void> | undefined;
  #tail: Promise<void> = Promise.resolve();

  constructor(store: ApprovalStateStore, snapshot: () => ApprovalsSnapshot, onError: (e: Error) => void) {
    this.#store = store;
    this.#snapshot = snapshot;
    this.#onError = onError;
  }

  save(): Promise<void> {
    if (this.#queued !== undefined) return this.#queued;
    const write = this.#tail.then(async () => {
      // From here on a change needs the next write: this snapshot may not hold it.
      this.#queued = undefined;
      try {
        await this.#store.save(this.#snapshot());
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        this.#onError(err);
        throw err;
      }
    });
    this.#queued = write;
    this.#tail = write.catch(() => undefined);
    return write;
  }

  /** Resolves when every write asked for so far has finished (saved or failed). */
  idle(): Promise<void> {
    return this.#tail;
  }
}

/**
 * One connector's pins on disk: `<dir>/<connector>.json`, version 1, 0600 in a
 * 0700 folder, replaced atomically. Read strictly: an unknown key, a wrong
 * version or connector, or a pin whose hash does not match its snapshot is an
 * error (the caller then fails closed), never a partial read.
 */
import { join } from 'node:path';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { formatZodIssues } from '../config/zod-issues.js';
import { ensurePrivateDir, readPrivateFile, writeFileDurablySync } from '../policy/durable-file.js';
import { snapshotHash, toolSnapshot, type Snapshot } from './canonical.js';

export const PIN_FILE_VERSION = 1;

export interface Pin {
  hash: string;
  snapshot: Snapshot;
  /** ISO time the pin was made. */
  pinnedAt: string;
  /** Who approved it; absent for a pin made on first sight. */
  by?: string;
  /** ISO time the upstream was first seen not listing the tool (so `tool.removed` fires once, across restarts). */
  removedAt?: string;
}

const PinSchema = z.strictObject({
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  pinnedAt: z.iso.datetime(),
  by: z.string().optional(),
  removedAt: z.iso.datetime().optional(),
  snapshot: z.strictObject({
    name: z.string(),
    title: z.string().optional(),
    description: z.string().optional(),
    inputSchema: z.unknown().optional(),
    outputSchema: z.unknown().optional(),
    annotations: z.unknown().optional(),
  }),
});

const FileSchema = z.strictObject({
  version: z.literal(PIN_FILE_VERSION),
  connector: z.string(),
  // An array, not an object keyed by name: a tool named `__proto__` stays a tool.
  tools: z.array(PinSchema),
});

export const pinFileName = (connector: string): string => `${connector}.json`;

/** The pins of `connector`, or undefined when it has no file. Throws an Error saying what is wrong. */
export function readPins(dir: string, connector: string): Map<string, Pin> | undefined {
  const text = readPrivateFile(join(dir, pinFileName(connector)), 16 << 20);
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`);
  }
  const parsed = FileSchema.safeParse(raw);
  if (!parsed.success) throw new Error(formatZodIssues(parsed.error.issues));
  if (parsed.data.connector !== connector) throw new Error(`holds the pins of connector ${JSON.stringify(parsed.data.connector)}`);
  const pins = new Map<string, Pin>();
  for (const p of parsed.data.tools) {
    const snapshot = toolSnapshot(p.snapshot as Tool);
    if (snapshotHash(snapshot) !== p.hash) throw new Error(`the pin of tool ${JSON.stringify(snapshot.name)} does not match its hash`);
    if (pins.has(snapshot.name)) throw new Error(`tool ${JSON.stringify(snapshot.name)} is pinned twice`);
    const pin: Pin = { hash: p.hash, snapshot, pinnedAt: p.pinnedAt };
    if (p.by !== undefined) pin.by = p.by;
    if (p.removedAt !== undefined) pin.removedAt = p.removedAt;
    pins.set(snapshot.name, pin);
  }
  return pins;
}

/** Replaces the pin file of `connector` atomically and durably; throws on any failure (the old file is then intact). */
export function writePins(dir: string, connector: string, pins: ReadonlyMap<string, Pin>): void {
  ensurePrivateDir(dir);
  const tools = [...pins.values()].sort((a, b) => (a.snapshot.name < b.snapshot.name ? -1 : 1));
  writeFileDurablySync(dir, pinFileName(connector), `${JSON.stringify({ version: PIN_FILE_VERSION, connector, tools }, null, 2)}\n`);
}


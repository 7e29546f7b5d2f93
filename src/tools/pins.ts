/**
 * Tool pinning (issue #16): an upstream cannot change what the agent is told
 * about a tool — its name, title, description, schemas, annotations — without
 * an admin seeing and approving the change ("rug pull", tool poisoning).
 *
 * `admit` is called on every tools/list refresh of a connector and returns the
 * tools to serve. It plans (classify every tool against its pin), persists
 * (one file per connector, replaced atomically, before anything is served
 * from the new plan), then commits and reports (events shaped as audit
 * records, once per transition). A pin file that cannot be read fails closed:
 * every tool of the connector is quarantined until `repin`, never re-pinned
 * silently.
 *
 * Not done here: a connector removed from the registry only leaves memory
 * (`forget`); its pins stay on disk, so a re-added connector is compared with
 * what was approved instead of being trusted on first sight again.
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { errorMessage, GatehouseError } from '../errors.js';
import { CONNECTOR_NAME } from '../registry/fields.js';
import { toolSnapshot, snapshotHash, type Snapshot } from './canonical.js';
import { toolDiff } from './diff.js';
import { pinFileName, readPins, writePins, type Pin } from './pin-file.js';

/** Registry `pin:` — strict quarantines a change, warn serves it and flags it, off serves everything and records nothing. */
export type PinMode = 'strict' | 'warn' | 'off';

/** pinned: as approved; changed: differs from its pin; new: no pin on a pinned connector; blocked: screening findings (or it cannot be pinned). */
export type PinState = 'pinned' | 'changed' | 'new' | 'blocked';

export type PinEventName = 'tool.pinned' | 'tool.quarantined' | 'tool.changed' | 'tool.approved' | 'tool.removed' | 'tool.pins_rejected';

/** Shaped as an audit record. */
export interface PinEvent {
  event: PinEventName;
  connector: string;
  tool?: string;
  /** The hash now listed (or, for tool.removed, the pinned one). */
  hash?: string;
  /** The pinned hash a change or approval departs from. */
  previousHash?: string;
  /** toolDiff of pinned → now, with hidden characters escaped. */
  diff?: string;
  reasons?: string[];
  /** Who approved. */
  by?: string;
}

export interface PinRow {
  connector: string;
  tool: string;
  state: PinState;
  /** Whether the agent is offered it now (a 'changed' tool is served in warn mode; a pinned tool not listed is not). */
  served: boolean;
  pinnedHash?: string;
  currentHash?: string;
  /** ISO time of the pin. */
  pinnedAt?: string;
  /** ISO time the version now listed was first seen. */
  seenAt?: string;
  reasons: string[];
}

export interface AdmitOptions {
  mode: PinMode;
  /** Screening: reasons to withhold a tool until approved (empty when none). Asked of every tool not identical to its pin. */
  blocked?: (tool: Tool) => string[];
}

export interface PinStoreOptions {
  /** The pins folder (created 0700). */
  dir: string;
  /** Must not throw; if it does, the error leaves the call after the state is saved. */
  onEvent: (e: PinEvent) => void;
  now?: () => number;
}

/** One tool name of the last listing, as classified. */
interface Listed {
  tool: Tool;
  /** Absent when the tool cannot be pinned (see `problem`). */
  snapshot?: Snapshot;
  hash?: string;
  /** Why it cannot be pinned or approved: not hashable, or listed twice with different definitions. */
  problem?: string;
  seenAt: string;
  state: PinState;
  served: boolean;
  reasons: string[];
}

interface ConnectorPins {
  pins: Map<string, Pin>;
  /** A pin file exists (or existed, unreadable): the connector is not on first sight. */
  onDisk: boolean;
  /** Why the pin file was refused; every tool is quarantined until `repin`. */
  rejected?: string;
  /** The last listing, by name; undefined until the first `admit` of this process. */
  listed?: Map<string, Listed>;
  /** The listing and options `admit` was last called with, to re-classify after an approval. */
  last?: { tools: readonly Tool[]; opts: AdmitOptions };
  /** Per tool, the transition last reported, so each is reported once. */
  announced: Map<string, string>;
}

/** A candidate version of one tool name: the listed copies agree, or why not. */
function versionOf(copies: readonly Tool[]): { snapshot?: Snapshot; hash?: string; problem?: string } {
  try {
    const snapshot = toolSnapshot(copies[0] as Tool);
    const hash = snapshotHash(snapshot);
    for (const other of copies.slice(1)) {
      if (snapshotHash(toolSnapshot(other)) !== hash) return { problem: `listed ${copies.length} times with different definitions` };
    }
    return { snapshot, hash };
  } catch (e) {
    return { problem: `cannot be pinned: ${errorMessage(e)}` };
  }
}

const transition = (l: Listed): string => `${l.state}|${l.hash ?? ''}|${l.served}|${l.reasons.join('\n')}`;

export class PinStore {
  readonly #dir: string;
  readonly #onEvent: (e: PinEvent) => void;
  readonly #now: () => number;
  readonly #connectors = new Map<string, ConnectorPins>();

  constructor(opts: PinStoreOptions) {
    this.#dir = opts.dir;
    this.#onEvent = opts.onEvent;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Classifies a connector's listing against its pins and returns the tools to
   * serve (in listed order; one copy of a name). Writes the pin file, before
   * reporting, when pins were made or a removal recorded; throws if it cannot,
   * with nothing changed.
   */
  admit(connector: string, tools: readonly Tool[], opts: AdmitOptions): Tool[] {
    const c = this.#load(connector);
    const served = this.#admit(connector, c, tools, opts);
    c.last = { tools, opts };
    return served;
  }

  /** Every tool of `connector` (or of every connector this store holds), by connector then name. */
  list(connector?: string): PinRow[] {
    const names = connector === undefined ? [...this.#connectors.keys()].sort() : [connector];
    return names.flatMap((name) => this.#rows(name, this.#load(name)));
  }

  /** The diff of a tool's pin and its listed version; undefined when neither exists. */
  diff(connector: string, tool: string): string | undefined {
    const c = this.#load(connector);
    const listed = c.listed?.get(tool);
    const pin = c.pins.get(tool);
    if (listed === undefined && pin === undefined) return undefined;
    return toolDiff(connector, tool, pin?.snapshot, listed?.snapshot);
  }

  /**
   * Pins the listed version of `tool`, or of every tool of the connector that
   * is not served as pinned. Throws NOT_FOUND for a tool not listed now,
   * USAGE for one that cannot be pinned, STATE_UNAVAILABLE while the pin file
   * is unreadable (only `repin` replaces it).
   */
  approve(connector: string, tool: string | undefined, by: string): PinRow[] {
    const c = this.#load(connector);
    if (c.rejected !== undefined) {
      throw new GatehouseError('STATE_UNAVAILABLE', `the pin file of connector ${connector} is unreadable (${c.rejected}); review its tools, then re-pin them all`);
    }
    if (c.listed === undefined) throw new GatehouseError('NOT_FOUND', `connector ${connector} has not listed its tools since the gateway started`);
    let targets: Listed[];
    if (tool === undefined) {
      targets = [...c.listed.values()].filter((l) => l.state !== 'pinned' && l.problem === undefined);
    } else {
      const l = c.listed.get(tool);
      if (l === undefined) throw new GatehouseError('NOT_FOUND', `connector ${connector} does not list a tool ${JSON.stringify(tool)}`);
      if (l.problem !== undefined) throw new GatehouseError('USAGE', `tool ${JSON.stringify(tool)} of connector ${connector} ${l.problem}`);
      targets = l.state === 'pinned' ? [] : [l];
    }
    this.#pin(connector, c, targets, by);
    const names = new Set(tool === undefined ? targets.map((l) => l.tool.name) : [tool]);
    return this.#rows(connector, c).filter((r) => names.has(r.tool));
  }

  /** Re-pins every tool listed now (after review); the way out of an unreadable pin file. Pins of tools not listed are kept. */
  repin(connector: string, by: string): PinRow[] {
    const c = this.#load(connector);
    if (c.listed === undefined) throw new GatehouseError('NOT_FOUND', `connector ${connector} has not listed its tools since the gateway started`);
    const targets = [...c.listed.values()].filter((l) => l.problem === undefined && (c.rejected !== undefined || l.state !== 'pinned'));
    this.#pin(connector, c, targets, by);
    return this.#rows(connector, c).filter((r) => c.listed?.has(r.tool));
  }

  /** Drops the connector from memory only: its pin file stays, so a re-added connector is held to its pins. */
  forget(connector: string): void {
    this.#connectors.delete(connector);
  }

  #load(connector: string): ConnectorPins {
    const known = this.#connectors.get(connector);
    if (known !== undefined) return known;
    if (!CONNECTOR_NAME.test(connector)) throw new GatehouseError('USAGE', `not a connector name: ${JSON.stringify(connector)}`);
    const c: ConnectorPins = { pins: new Map(), onDisk: false, announced: new Map() };
    let refused: string | undefined;
    try {
      const pins = readPins(this.#dir, connector);
      if (pins !== undefined) {
        c.pins = pins;
        c.onDisk = true;
      }
    } catch (e) {
      refused = `${pinFileName(connector)} ${errorMessage(e)}`;
      c.rejected = refused;
      c.onDisk = true;
    }
    this.#connectors.set(connector, c);
    if (refused !== undefined) this.#onEvent({ event: 'tool.pins_rejected', connector, reasons: [`pin file unreadable: ${refused}`] });
    return c;
  }

  #admit(connector: string, c: ConnectorPins, tools: readonly Tool[], opts: AdmitOptions): Tool[] {
    const now = new Date(this.#now()).toISOString();
    const off = opts.mode === 'off';
    const firstSight = !c.onDisk && !off;
    const groups = new Map<string, Tool[]>();
    for (const t of tools) {
      const g = groups.get(t.name);
      if (g === undefined) groups.set(t.name, [t]);
      else g.push(t);
    }

    // Plan: classify every name; pins to make, removals to record, events to report.
    const pins = new Map(c.pins);
    let write = firstSight;
    const listed = new Map<string, Listed>();
    const events: PinEvent[] = [];
    const announced = new Map(c.announced);
    for (const [name, copies] of groups) {
      const v = versionOf(copies);
      const pin = c.pins.get(name);
      const before = c.listed?.get(name);
      const l: Listed = {
        tool: copies[0] as Tool,
        seenAt: before !== undefined && before.hash === v.hash ? before.seenAt : now,
        state: 'pinned',
        served: true,
        reasons: [],
      };
      if (v.snapshot !== undefined) l.snapshot = v.snapshot;
      if (v.hash !== undefined) l.hash = v.hash;
      if (v.problem !== undefined) l.problem = v.problem;
      let pinnedNow = false;
      if (pin?.removedAt !== undefined && !off && c.rejected === undefined) {
        // Listed again: a later removal is reported again.
        const { removedAt: _, ...back } = pin;
        pins.set(name, back);
        write = true;
      }
      if (c.rejected !== undefined) {
        Object.assign(l, { state: 'changed', served: off, reasons: [`pin file unreadable: ${c.rejected}`] });
      } else if (v.problem !== undefined) {
        Object.assign(l, { state: 'blocked', served: off, reasons: [v.problem] });
      } else if (pin !== undefined && pin.hash === v.hash) {
        // As pinned: served.
      } else if (off) {
        Object.assign(l, { state: pin === undefined ? 'new' : 'changed', reasons: [pin === undefined ? 'not pinned' : `changed since pinned at ${pin.pinnedAt}`] });
      } else {
        const findings = opts.blocked?.(l.tool) ?? [];
        if (firstSight && findings.length === 0) {
          pins.set(name, { hash: v.hash as string, snapshot: v.snapshot as Snapshot, pinnedAt: now });
          pinnedNow = true;
        } else {
          const why = firstSight ? [] : [pin === undefined ? 'new tool on a pinned connector' : `changed since pinned at ${pin.pinnedAt}`];
          const state: PinState = findings.length > 0 ? 'blocked' : pin === undefined ? 'new' : 'changed';
          Object.assign(l, { state, served: state !== 'blocked' && opts.mode === 'warn', reasons: [...why, ...findings] });
        }
      }
      listed.set(name, l);
      if (off) continue;
      const key = transition(l);
      if (announced.get(name) === key) continue;
      announced.set(name, key);
      const e = this.#report(connector, l, pinnedNow ? undefined : pin);
      if (e !== undefined) events.push(e);
    }
    if (!off) {
      for (const [name, pin] of c.pins) {
        if (groups.has(name) || pin.removedAt !== undefined || c.rejected !== undefined) continue;
        pins.set(name, { ...pin, removedAt: now });
        write = true;
        announced.delete(name);
        events.push({ event: 'tool.removed', connector, tool: name, hash: pin.hash });
      }
      for (const [name, l] of c.listed ?? []) {
        // Only a tool whose arrival was reported (not one seen in mode off).
        if (groups.has(name) || c.pins.has(name) || !c.announced.has(name)) continue;
        announced.delete(name);
        events.push(withOptional({ event: 'tool.removed' as const, connector, tool: name }, { hash: l.hash }));
      }
    }

    // Persist, then commit and report: nothing is served or reported from a plan that is not on disk.
    if (write && c.rejected === undefined) writePins(this.#dir, connector, pins);
    if (write) c.onDisk = true;
    if (c.rejected === undefined) c.pins = pins;
    c.listed = listed;
    if (!off) c.announced = announced;
    for (const e of events) this.#onEvent(e);

    const served: Tool[] = [];
    const once = new Set<string>();
    for (const t of tools) {
      if (once.has(t.name) || listed.get(t.name)?.served !== true) continue;
      once.add(t.name);
      served.push(t);
    }
    return served;
  }

  /** The event for a tool's new transition; none for one served as already pinned. */
  #report(connector: string, l: Listed, pin: Pin | undefined): PinEvent | undefined {
    const tool = l.tool.name;
    if (l.state === 'pinned') return pin === undefined ? withOptional({ event: 'tool.pinned' as const, connector, tool }, { hash: l.hash }) : undefined;
    const event: PinEventName = l.served ? 'tool.changed' : 'tool.quarantined';
    return withOptional(
      { event, connector, tool, reasons: l.reasons, diff: toolDiff(connector, tool, pin?.snapshot, l.snapshot) },
      { hash: l.hash, previousHash: pin?.hash },
    );
  }

  /** Pins the listed version of each target (replacing an unreadable file), then re-classifies the last listing. */
  #pin(connector: string, c: ConnectorPins, targets: readonly Listed[], by: string): void {
    const now = new Date(this.#now()).toISOString();
    const base = c.rejected === undefined ? c.pins : new Map<string, Pin>();
    const pins = new Map(base);
    const events: PinEvent[] = [];
    for (const l of targets) {
      const tool = l.tool.name;
      const previous = base.get(tool);
      pins.set(tool, { hash: l.hash as string, snapshot: l.snapshot as Snapshot, pinnedAt: now, by });
      events.push(
        withOptional(
          { event: 'tool.approved' as const, connector, tool, by, diff: toolDiff(connector, tool, previous?.snapshot, l.snapshot) },
          { hash: l.hash, previousHash: previous?.hash },
        ),
      );
    }
    if (targets.length === 0 && c.rejected === undefined) return;
    writePins(this.#dir, connector, pins);
    c.pins = pins;
    c.onDisk = true;
    delete c.rejected;
    for (const e of events) this.#onEvent(e);
    if (c.last !== undefined) this.#admit(connector, c, c.last.tools, c.last.opts);
  }

  #rows(connector: string, c: ConnectorPins): PinRow[] {
    const names = [...new Set([...(c.listed?.keys() ?? []), ...c.pins.keys()])].sort();
    return names.map((tool) => {
      const l = c.listed?.get(tool);
      const pin = c.pins.get(tool);
      const pinned = { pinnedHash: pin?.hash, pinnedAt: pin?.pinnedAt };
      if (l !== undefined) {
        return withOptional({ connector, tool, state: l.state, served: l.served, reasons: [...l.reasons] }, { ...pinned, currentHash: l.hash, seenAt: l.seenAt });
      }
      const why = pin?.removedAt !== undefined ? `not listed by the upstream since ${pin.removedAt}` : c.listed === undefined ? 'not listed since the gateway started' : 'not listed by the upstream';
      return withOptional({ connector, tool, state: 'pinned' as const, served: false, reasons: [why] }, pinned);
    });
  }
}

/** `base` with the defined members of `extra` (exactOptionalPropertyTypes: an absent field is left out, never undefined). */
function withOptional<T extends object, U extends Record<string, unknown>>(base: T, extra: U): T & { [K in keyof U]?: Exclude<U[K], undefined> } {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out as T & { [K in keyof U]?: Exclude<U[K], undefined> };
}

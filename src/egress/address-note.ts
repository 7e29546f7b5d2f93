/**
 * What the proxy will do about the address of an allowed connection, said
 * before any name is resolved (`gatehouse policy explain --egress`). Mirrors
 * gate.ts: a denied connection is never resolved; an allowed (or approved)
 * one is checked with `addressProblem` unless the decision says a rule names
 * the host exactly (`hostNamed`, see evaluateEgress).
 * A pure function; it resolves nothing, so for a name it can only say which
 * check applies, for an IP literal it knows the answer.
 */
import type { EgressDecision } from '../policy/types.js';
import { addressProblem } from './address.js';
import type { EgressTarget } from './target.js';

export interface AddressNote {
  /** true when the proxy checks the address(es) against the special-purpose ranges. */
  checked: boolean;
  /** true when the proxy is known to refuse the connection anyway (an IP literal in a refused range). */
  refused: boolean;
  note: string;
}

export function addressNote(target: EgressTarget, d: EgressDecision): AddressNote {
  if (d.effect === 'deny') return { checked: false, refused: false, note: 'none: a denied connection is refused before any name is resolved' };
  // An asked connection, once approved, is checked like an allowed one (gate.ts).
  const n = check(target, d.hostNamed);
  return d.effect === 'ask' ? { ...n, note: `if a human approves: ${n.note}` } : n;
}

function check(target: EgressTarget, hostNamed: boolean): AddressNote {
  const host = target.host;
  if (hostNamed) {
    return target.literal
      ? { checked: false, refused: false, note: `a rule names ${host} exactly, so it may be reached whatever its range (loopback and private included)` }
      : { checked: false, refused: false, note: `a rule names ${host} exactly, so it may resolve to any address, loopback and private ones included` };
  }
  if (target.literal) {
    const problem = addressProblem(host);
    if (problem !== undefined) {
      return { checked: true, refused: true, note: `${host} is ${problem}: the proxy refuses it, since no deciding rule names it exactly (a glob cannot reach it)` };
    }
    return { checked: true, refused: false, note: `${host} is a public address; a glob rule may reach it` };
  }
  return {
    checked: true,
    refused: false,
    note: `no deciding rule names ${host} exactly (a glob decides): the proxy refuses the connection if the name resolves to a loopback, private, link-local, CGNAT, metadata or other special-purpose address`,
  };
}

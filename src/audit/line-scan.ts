/**
 * Verify's fast reading of a record line: a JSON validator over the line's
 * bytes that picks out the few top-level fields verify needs, without
 * building the record (JSON.parse was most of verify's time).
 *
 * It proves, or gives up: a line it accepts is one JSON.parse accepts (RFC
 * 8259 grammar, UTF-8), with `"v":1` first and `"hash":"<64 hex>"` last, no
 * top-level key of interest twice, `prev` 64 lowercase hex digits and the
 * values it hands back the ones JSON.parse would give. Anything else
 * (whitespace between tokens, an escape in a field verify reads, a repeated
 * key, deep nesting, a seq written other than as plain digits) returns
 * undefined and the line takes the full check (checkLine), which alone
 * decides what is wrong with it.
 */
import { isUtf8 } from 'node:buffer';
import { LINE_HEAD } from './line-check.js';

export interface ScannedLine {
  seq: number;
  event: string;
  /** [start, end) of the string values of these fields in the line; -1 when absent or not a string. */
  time: number;
  timeEnd: number;
  call: number;
  callEnd: number;
  agent: number;
  agentEnd: number;
  tool: number;
  toolEnd: number;
}

/** Deeper values are left to JSON.parse. */
const MAX_DEPTH = 64;
/** `,"hash":"` + 64 hex + `"}` */
const HASH_SUFFIX = 9 + 64 + 2;
const HEAD = Buffer.from(LINE_HEAD);
const HASH_KEY = Buffer.from(',"hash":"');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;

const F_V = 1;
const F_SEQ = 2;
const F_PREV = 4;
const F_HASH = 8;
const F_EVENT = 16;
const F_TIME = 32;
const F_CALL = 64;
const F_AGENT = 128;
const F_TOOL = 256;
const REQUIRED = F_V | F_SEQ | F_PREV | F_HASH | F_EVENT | F_TIME;

/** Set by skipString: the string held an escape / a byte >= 0x80. */
let escaped = false;
let nonAscii = false;
const stack = new Uint8Array(MAX_DEPTH);

const PLAIN = 0;
const END = 1;
const ESCAPE = 2;
const CONTROL = 3;
const HIGH = 4;
/** What a byte inside a string is. */
const IN_STRING = new Uint8Array(256);
IN_STRING[QUOTE] = END;
IN_STRING[BACKSLASH] = ESCAPE;
IN_STRING.fill(CONTROL, 0, 0x20);
IN_STRING.fill(HIGH, 0x80);
/** Bytes that may follow a backslash, besides `u` (RFC 8259 §7). */
const ESCAPES = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPES[c.charCodeAt(0)] = 1;
/** Hex digit values (either case, as in \u escapes); 0xff for any other byte. */
const HEX = new Uint8Array(256).fill(0xff);
for (let c = 0; c < 16; c++) {
  HEX['0123456789abcdef'.charCodeAt(c)] = c;
  HEX['0123456789ABCDEF'.charCodeAt(c)] = c;
}

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

/** b[p] is a quote: the offset after the closing quote, or -1 (not a JSON string: RFC 8259 §7). */
function skipString(b: Buffer, p: number): number {
  escaped = false;
  const n = b.length;
  let i = p + 1;
  while (i < n) {
    const k = IN_STRING[b[i] as number];
    if (k === PLAIN) i++;
    else if (k === END) return i + 1;
    else if (k === HIGH) {
      nonAscii = true;
      i++;
    } else if (k === CONTROL) return -1;
    else {
      escaped = true;
      const e = b[i + 1] as number;
      if (e === 0x75) {
        if (i + 6 > n || ((HEX[b[i + 2] as number] as number) | (HEX[b[i + 3] as number] as number) | (HEX[b[i + 4] as number] as number) | (HEX[b[i + 5] as number] as number)) === 0xff) return -1;
        i += 6;
      } else if (i + 2 <= n && ESCAPES[e] === 1) i += 2;
      else return -1;
    }
  }
  return -1;
}

/** b[p] starts a number: the offset after it, or -1 (RFC 8259 §6). */
function skipNumber(b: Buffer, p: number): number {
  let i = p;
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if (isDigit(b[i]) && b[i] !== 0x30) while (isDigit(b[i])) i++;
  else return -1;
  if (b[i] === 0x2e) {
    i++;
    if (!isDigit(b[i])) return -1;
    while (isDigit(b[i])) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    if (!isDigit(b[i])) return -1;
    while (isDigit(b[i])) i++;
  }
  return i;
}

function isWord(b: Buffer, p: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if (b[p + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** A key and its colon at b[p]: the offset after the colon, or -1. */
function skipKey(b: Buffer, p: number): number {
  if (b[p] !== QUOTE) return -1;
  const i = skipString(b, p);
  return i > 0 && b[i] === COLON ? i + 1 : -1;
}

/** A JSON value at b[p] (no whitespace anywhere): the offset after it, or -1. */
function skipValue(b: Buffer, p: number): number {
  let depth = 0;
  let i = p;
  for (;;) {
    const c = b[i];
    if (c === QUOTE) i = skipString(b, i);
    else if (c === OPEN_OBJ || c === OPEN_ARR) {
      const close = c === OPEN_OBJ ? CLOSE_OBJ : CLOSE_ARR;
      if (b[i + 1] === close) i += 2;
      else {
        if (depth === MAX_DEPTH) return -1;
        stack[depth++] = close;
        i = c === OPEN_OBJ ? skipKey(b, i + 1) : i + 1;
        if (i < 0) return -1;
        continue;
      }
    } else if (c === 0x74) i = isWord(b, i, 'true') ? i + 4 : -1;
    else if (c === 0x66) i = isWord(b, i, 'false') ? i + 5 : -1;
    else if (c === 0x6e) i = isWord(b, i, 'null') ? i + 4 : -1;
    else i = skipNumber(b, i);
    if (i < 0) return -1;
    // After a value: close containers until one goes on with a comma.
    for (;;) {
      if (depth === 0) return i;
      const close = stack[depth - 1];
      const d = b[i];
      if (d === close) {
        depth--;
        i++;
        continue;
      }
      if (d !== COMMA) return -1;
      i = close === CLOSE_OBJ ? skipKey(b, i + 1) : i + 1;
      if (i < 0) return -1;
      break;
    }
  }
}

/** Which field of interest the key at b[s, e) is (0 for any other). */
function fieldOf(b: Buffer, s: number, e: number): number {
  switch (e - s) {
    case 1:
      return b[s] === 0x76 ? F_V : 0;
    case 3:
      return isWord(b, s, 'seq') ? F_SEQ : 0;
    case 4:
      return isWord(b, s, 'prev') ? F_PREV : isWord(b, s, 'hash') ? F_HASH : isWord(b, s, 'time') ? F_TIME : isWord(b, s, 'call') ? F_CALL : isWord(b, s, 'tool') ? F_TOOL : 0;
    case 5:
      return isWord(b, s, 'event') ? F_EVENT : isWord(b, s, 'agent') ? F_AGENT : 0;
    default:
      return 0;
  }
}

/** Lowercase hex digit values (what checkLine's isHash accepts); 0xff for any other byte. */
const LOWER_HEX = new Uint8Array(256).fill(0xff);
for (let c = 0; c < 16; c++) LOWER_HEX['0123456789abcdef'.charCodeAt(c)] = c;

/**
 * The 64 lowercase hex digits at b[at..] as 32 bytes at out[o..]; false (out
 * partly written) if they are not 64 lowercase hex digits.
 */
function hexInto(b: Buffer, at: number, out: Uint8Array, o: number): boolean {
  if (at < 0 || at + 64 > b.length) return false;
  let bad = 0;
  for (let k = 0; k < 32; k++) {
    const hi = LOWER_HEX[b[at + 2 * k] as number] as number;
    const lo = LOWER_HEX[b[at + 2 * k + 1] as number] as number;
    bad |= hi | lo;
    out[o + k] = (hi << 4) | lo;
  }
  return bad < 16;
}

/**
 * The fields verify needs from one line (without its newline), with its
 * `hash` and `prev` decoded into hashOut[at..] and prevOut[at..]; or
 * undefined (the outputs perhaps partly written) when this cannot prove the
 * line well-formed in the shape the writer produces: then checkLine decides.
 */
export function scanRecordLine(b: Buffer, hashOut: Uint8Array, prevOut: Uint8Array, at: number): ScannedLine | undefined {
  const n = b.length;
  if (n <= HEAD.length + HASH_SUFFIX || b[n - 1] !== CLOSE_OBJ) return undefined;
  for (let k = 0; k < HEAD.length; k++) if (b[k] !== HEAD[k]) return undefined;
  for (let k = 0; k < HASH_KEY.length; k++) if (b[n - HASH_SUFFIX + k] !== HASH_KEY[k]) return undefined;
  nonAscii = false;
  let hashAt = -1;
  const out: ScannedLine = { seq: 0, event: '', time: -1, timeEnd: -1, call: -1, callEnd: -1, agent: -1, agentEnd: -1, tool: -1, toolEnd: -1 };
  let seen = 0;
  let eventAt = -1;
  let eventEnd = -1;
  let i = 1;
  for (;;) {
    if (b[i] !== QUOTE) return undefined;
    const keyEnd = skipString(b, i);
    if (keyEnd < 0 || escaped || b[keyEnd] !== COLON) return undefined;
    const field = fieldOf(b, i + 1, keyEnd - 1);
    if ((seen & field) !== 0) return undefined;
    seen |= field;
    const v = keyEnd + 1;
    // `prev` and `hash`: 64 lowercase hex digits in quotes (decoding them checks them: no string scan).
    const hex = field === F_PREV || field === F_HASH;
    const end = hex ? (b[v] === QUOTE && b[v + 65] === QUOTE && hexInto(b, v + 1, field === F_PREV ? prevOut : hashOut, at) ? v + 66 : -1) : skipValue(b, v);
    if (end < 0) return undefined;
    if (field !== 0) {
      const isString = b[v] === QUOTE;
      // Strings verify reads are taken as they stand: one with an escape goes to JSON.parse.
      if (isString && !hex && escaped) return undefined;
      switch (field) {
        case F_V:
          if (v !== HEAD.length - 2 || end !== v + 1) return undefined;
          break;
        case F_SEQ: {
          // A positive integer with at most 15 digits (a safe integer); other forms go to checkLine.
          if (end - v > 15 || b[v] === 0x30) return undefined;
          let seq = 0;
          for (let k = v; k < end; k++) {
            const c = b[k] as number;
            if (c < 0x30 || c > 0x39) return undefined;
            seq = seq * 10 + (c - 0x30);
          }
          out.seq = seq;
          break;
        }
        case F_HASH:
          hashAt = v + 1;
          break;
        case F_PREV:
          break;
        case F_EVENT:
          if (!isString) return undefined;
          eventAt = v + 1;
          eventEnd = end - 1;
          break;
        case F_TIME:
          if (!isString) return undefined;
          out.time = v + 1;
          out.timeEnd = end - 1;
          break;
        default:
          if (!isString) break;
          if (field === F_CALL) {
            out.call = v + 1;
            out.callEnd = end - 1;
          } else if (field === F_AGENT) {
            out.agent = v + 1;
            out.agentEnd = end - 1;
          } else {
            out.tool = v + 1;
            out.toolEnd = end - 1;
          }
      }
    }
    if (b[end] === COMMA) {
      i = end + 1;
      continue;
    }
    if (b[end] !== CLOSE_OBJ || end !== n - 1) return undefined;
    break;
  }
  // `hash` must be the member the suffix check saw (the last one).
  if ((seen & REQUIRED) !== REQUIRED || hashAt !== n - 66) return undefined;
  // JSON.parse reads the line as the UTF-8 decoder hands it over: only well-formed UTF-8 decodes losslessly.
  if (nonAscii && !isUtf8(b)) return undefined;
  out.event = b.toString(nonAscii ? 'utf8' : 'latin1', eventAt, eventEnd);
  return out;
}

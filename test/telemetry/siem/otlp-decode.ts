/**
 * A decoder for the OTLP/HTTP logs request (protobuf), enough to read back
 * what the sink sent: ExportLogsServiceRequest → ResourceLogs → ScopeLogs →
 * LogRecord, with KeyValue/AnyValue attributes (field numbers from
 * opentelemetry-proto: collector/logs/v1/logs_service.proto, logs/v1/logs.proto,
 * common/v1/common.proto). Protobuf wire format: varint tags, types 0
 * (varint), 1 (64-bit), 2 (length-delimited), 5 (32-bit). And the one
 * answer a collector stand-in needs beyond an empty one: a partial success.
 */
type Field = { n: number; type: number; value: bigint | Buffer };

function varint(buf: Buffer, at: { i: number }): bigint {
  let out = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[at.i++];
    if (b === undefined) throw new Error('truncated varint');
    out |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return out;
    shift += 7n;
  }
}

export function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  const at = { i: 0 };
  while (at.i < buf.length) {
    const tag = Number(varint(buf, at));
    const n = tag >>> 3;
    const type = tag & 7;
    if (type === 0) out.push({ n, type, value: varint(buf, at) });
    else if (type === 1) {
      out.push({ n, type, value: buf.readBigUInt64LE(at.i) });
      at.i += 8;
    } else if (type === 2) {
      const len = Number(varint(buf, at));
      out.push({ n, type, value: buf.subarray(at.i, at.i + len) });
      at.i += len;
    } else if (type === 5) {
      out.push({ n, type, value: BigInt(buf.readUInt32LE(at.i)) });
      at.i += 4;
    } else throw new Error(`wire type ${type}`);
  }
  return out;
}

const all = (f: Field[], n: number) => f.filter((x) => x.n === n);
const one = (f: Field[], n: number) => f.find((x) => x.n === n);
const str = (f: Field[], n: number) => (one(f, n)?.value as Buffer | undefined)?.toString('utf8');

export type AnyValue = string | boolean | number | bigint | AnyValue[] | { [k: string]: AnyValue } | Buffer | undefined;

function anyValue(buf: Buffer): AnyValue {
  const f = fields(buf)[0];
  if (f === undefined) return undefined;
  switch (f.n) {
    case 1:
      return (f.value as Buffer).toString('utf8');
    case 2:
      return f.value === 1n;
    case 3:
      return BigInt.asIntN(64, f.value as bigint);
    case 4: {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(f.value as bigint);
      return b.readDoubleLE(0);
    }
    case 5:
      return all(fields(f.value as Buffer), 1).map((v) => anyValue(v.value as Buffer));
    case 6:
      return keyValues(all(fields(f.value as Buffer), 1));
    default:
      return f.value as Buffer;
  }
}

function keyValues(list: Field[]): Record<string, AnyValue> {
  const out: Record<string, AnyValue> = {};
  for (const kv of list) {
    const f = fields(kv.value as Buffer);
    const v = one(f, 2);
    out[str(f, 1) ?? ''] = v === undefined ? undefined : anyValue(v.value as Buffer);
  }
  return out;
}

export interface LogRecord {
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint | undefined;
  severityNumber: number;
  severityText: string | undefined;
  body: AnyValue;
  attributes: Record<string, AnyValue>;
  eventName: string | undefined;
  resource: Record<string, AnyValue>;
  scope: { name: string | undefined; version: string | undefined };
}

/** Every LogRecord of an ExportLogsServiceRequest. */
export function decodeLogsRequest(buf: Buffer): LogRecord[] {
  const out: LogRecord[] = [];
  for (const rl of all(fields(buf), 1)) {
    const rlf = fields(rl.value as Buffer);
    const resource = one(rlf, 1);
    const resourceAttrs = resource === undefined ? {} : keyValues(all(fields(resource.value as Buffer), 1));
    for (const sl of all(rlf, 2)) {
      const slf = fields(sl.value as Buffer);
      const scopeF = one(slf, 1);
      const sf = scopeF === undefined ? [] : fields(scopeF.value as Buffer);
      for (const lr of all(slf, 2)) {
        const f = fields(lr.value as Buffer);
        const body = one(f, 5);
        out.push({
          timeUnixNano: (one(f, 1)?.value as bigint | undefined) ?? 0n,
          observedTimeUnixNano: one(f, 11)?.value as bigint | undefined,
          severityNumber: Number((one(f, 2)?.value as bigint | undefined) ?? 0n),
          severityText: str(f, 3),
          body: body === undefined ? undefined : anyValue(body.value as Buffer),
          attributes: keyValues(all(f, 6)),
          eventName: str(f, 12),
          resource: resourceAttrs,
          scope: { name: str(sf, 1), version: str(sf, 2) },
        });
      }
    }
  }
  return out;
}

function encodeVarint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** ExportLogsServiceResponse { partial_success = 1: { rejected_log_records = 1; error_message = 2 } } (logs_service.proto). */
export function partialSuccess(rejected: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const inner = Buffer.concat([Buffer.from([0x08]), encodeVarint(rejected), Buffer.from([0x12]), encodeVarint(text.length), text]);
  return Buffer.concat([Buffer.from([0x0a]), encodeVarint(inner.length), inner]);
}

/**
 * A local OTLP trace collector for the tests: HTTP/protobuf (POST /v1/traces)
 * and gRPC (opentelemetry.proto.collector.trace.v1.TraceService/Export),
 * decoding what the gateway's exporter sends with protobufjs and the message
 * definitions of opentelemetry-proto (only the trace, common and resource
 * messages, field numbers as there).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, ServerCredentials, type ServiceDefinition, type handleUnaryCall } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

const COMMON = `
syntax = "proto3";
package opentelemetry.proto.common.v1;
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
`;
const RESOURCE = `
syntax = "proto3";
package opentelemetry.proto.resource.v1;
message Resource { repeated opentelemetry.proto.common.v1.KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
`;
const TRACE = `
syntax = "proto3";
package opentelemetry.proto.trace.v1;
message ResourceSpans { opentelemetry.proto.resource.v1.Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ScopeSpans { opentelemetry.proto.common.v1.InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated opentelemetry.proto.common.v1.KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated opentelemetry.proto.common.v1.KeyValue attributes = 4; uint32 dropped_attributes_count = 5; fixed32 flags = 6; }
  repeated Link links = 13;
  Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
`;
const SERVICE = `
syntax = "proto3";
package opentelemetry.proto.collector.trace.v1;
message ExportTraceServiceRequest { repeated opentelemetry.proto.trace.v1.ResourceSpans resource_spans = 1; }
message ExportTraceServiceResponse {}
`;

const root = new protobuf.Root();
for (const text of [COMMON, RESOURCE, TRACE, SERVICE]) protobuf.parse(text, root, { keepCase: true });
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

/** SpanKind of trace.proto. */
export const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
/** Status.StatusCode of trace.proto. */
export const STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status: { code: number; message: string };
  links: Array<{ traceId: string; spanId: string }>;
  resource: Record<string, unknown>;
}

type Pb = Record<string, unknown>;
const hex = (b: unknown): string => (b instanceof Uint8Array ? Buffer.from(b).toString('hex') : '');

function value(v: Pb | undefined): unknown {
  if (v === undefined || v === null) return undefined;
  if ('string_value' in v) return v.string_value;
  if ('bool_value' in v) return v.bool_value;
  if ('int_value' in v) return Number(v.int_value);
  if ('double_value' in v) return v.double_value;
  if ('array_value' in v) return ((v.array_value as Pb).values as Pb[] | undefined ?? []).map(value);
  return undefined;
}

function attributes(list: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of (list as Pb[] | undefined) ?? []) out[kv.key as string] = value(kv.value as Pb | undefined);
  return out;
}

/** Every span of an ExportTraceServiceRequest, flattened with its resource's attributes. */
export function decodeTraces(buf: Uint8Array): ReceivedSpan[] {
  const msg = Request.toObject(Request.decode(buf), { longs: String, defaults: false, oneofs: false }) as Pb;
  const out: ReceivedSpan[] = [];
  for (const rs of (msg.resource_spans as Pb[] | undefined) ?? []) {
    const resource = attributes((rs.resource as Pb | undefined)?.attributes);
    for (const ss of (rs.scope_spans as Pb[] | undefined) ?? []) {
      for (const s of (ss.spans as Pb[] | undefined) ?? []) {
        const status = (s.status as Pb | undefined) ?? {};
        out.push({
          traceId: hex(s.trace_id),
          spanId: hex(s.span_id),
          parentSpanId: hex(s.parent_span_id),
          name: s.name as string,
          kind: (s.kind as number | undefined) ?? 0,
          attributes: attributes(s.attributes),
          status: { code: (status.code as number | undefined) ?? 0, message: (status.message as string | undefined) ?? '' },
          links: ((s.links as Pb[] | undefined) ?? []).map((l) => ({ traceId: hex(l.trace_id), spanId: hex(l.span_id) })),
          resource,
        });
      }
    }
  }
  return out;
}

export interface Collector {
  /** OTEL_EXPORTER_OTLP_ENDPOINT for it. */
  endpoint: string;
  spans: ReceivedSpan[];
  /** Requests received (each an export). */
  exports: number;
  close(): Promise<void>;
}

/** OTLP/HTTP with protobuf bodies (OTLP spec: POST {endpoint}/v1/traces, application/x-protobuf). */
export async function startHttpCollector(): Promise<Collector> {
  const c: Collector = { endpoint: '', spans: [], exports: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (x: Buffer) => chunks.push(x));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/x-protobuf') {
        res.writeHead(404).end();
        return;
      }
      c.exports++;
      c.spans.push(...decodeTraces(Buffer.concat(chunks)));
      // An empty ExportTraceServiceResponse: full success.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  c.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return c;
}

/** OTLP/gRPC: the TraceService's one method, bodies decoded here (no .proto loader). */
export async function startGrpcCollector(): Promise<Collector> {
  const c: Collector = { endpoint: '', spans: [], exports: 0, close: async () => undefined };
  const raw = (b: Buffer) => b;
  const service: ServiceDefinition = {
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  };
  const exportCall: handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    c.exports++;
    c.spans.push(...decodeTraces(call.request));
    callback(null, Buffer.alloc(0));
  };
  const server = new Server();
  server.addService(service, { Export: exportCall });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  c.endpoint = `http://127.0.0.1:${port}`;
  c.close = () => new Promise<void>((r) => server.tryShutdown(() => r()));
  return c;
}

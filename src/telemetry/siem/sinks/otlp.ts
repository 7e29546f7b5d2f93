/**
 * OTLP logs (HTTP/protobuf) through the OpenTelemetry JS exporter
 * (`@opentelemetry/exporter-logs-otlp-proto`), loaded only when a sink of
 * this kind is configured. Each record is one LogRecord: its time, a
 * severity from the OCSF severity, the event (OCSF or record) as the JSON
 * body, and `gatehouse.audit.seq` / `.hash` / `.event` attributes (plus
 * `ocsf.class_uid` / `ocsf.type_uid` for OCSF). The batch counts as shipped
 * when the exporter reports success (the collector answered 2xx).
 */
import { hostname } from 'node:os';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import type { Encoded } from '../encode.js';
import type { OtlpSinkConfig } from '../config.js';
import { said, SinkError, type RenderSecret, type Sink } from './sink.js';

/** OCSF severity_id → OpenTelemetry SeverityNumber (logs data model): INFO 9, INFO2 10 (low), WARN 13, ERROR 17, FATAL 21. */
const SEVERITY: Record<number, [number, string]> = { 0: [9, 'INFO'], 1: [9, 'INFO'], 2: [10, 'INFO2'], 3: [13, 'WARN'], 4: [17, 'ERROR'], 5: [21, 'FATAL'], 6: [21, 'FATAL'] };

type Built = { exporter: OTLPLogExporter; resource: ReadableLogRecord['resource'] };

export class OtlpSink implements Sink {
  readonly #c: OtlpSinkConfig;
  readonly #render: RenderSecret;
  readonly #version: string;
  #built: Promise<Built> | undefined;

  constructor(c: OtlpSinkConfig, render: RenderSecret, version: string) {
    this.#c = c;
    this.#render = render;
    this.#version = version;
  }

  /** The exporter, made on first use (the OpenTelemetry packages are not loaded before). */
  #exporter(): Promise<Built> {
    return (this.#built ??= (async () => {
      const [{ OTLPLogExporter }, { resourceFromAttributes }] = await Promise.all([import('@opentelemetry/exporter-logs-otlp-proto'), import('@opentelemetry/resources')]);
      const exporter = new OTLPLogExporter({
        url: this.#c.url,
        timeoutMillis: this.#c.timeout,
        concurrencyLimit: 1,
        // Rendered per export: a rotated secret is used from the next batch on.
        headers: async () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(this.#c.headers)) out[k] = await this.#render(v, `header ${k}`);
          return out;
        },
      });
      const resource = resourceFromAttributes({ 'service.name': 'gatehouse', 'service.version': this.#version, 'host.name': hostname() });
      return { exporter, resource };
    })());
  }

  async send(batch: readonly Encoded[], signal: AbortSignal): Promise<void> {
    const { exporter, resource } = await this.#exporter();
    const observed = hr(Date.now());
    const scope = { name: 'gatehouse.audit', version: this.#version };
    const records: ReadableLogRecord[] = batch.map((e) => {
      const sev = typeof e.body.severity_id === 'number' ? SEVERITY[e.body.severity_id] : undefined;
      const [severityNumber, severityText] = sev ?? [9, 'INFO'];
      return {
        hrTime: hr(Date.parse(e.time)),
        hrTimeObserved: observed,
        severityNumber,
        severityText,
        body: e.json,
        eventName: e.event,
        resource,
        instrumentationScope: scope,
        attributes: {
          'gatehouse.audit.seq': e.seq,
          'gatehouse.audit.hash': e.hash,
          'gatehouse.audit.event': e.event,
          ...(typeof e.body.class_uid === 'number' ? { 'ocsf.class_uid': e.body.class_uid, 'ocsf.type_uid': e.body.type_uid as number } : {}),
        },
        droppedAttributesCount: 0,
      };
    });
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(new SinkError('retry', 'stopped'));
      signal.addEventListener('abort', onAbort, { once: true });
      exporter.export(records, (result) => {
        signal.removeEventListener('abort', onAbort);
        if (result.code === 0) return resolve();
        const err = result.error as (Error & { code?: number; data?: string }) | undefined;
        const status = typeof err?.code === 'number' ? err.code : undefined;
        const msg = `OTLP ${new URL(this.#c.url).origin}: ${status !== undefined ? `HTTP ${status}` : 'export failed'}${err?.message ? `: ${said(err.message)}` : ''}`;
        reject(new SinkError(status === 401 || status === 403 ? 'auth' : status === 400 || status === 413 ? 'rejected' : 'retry', msg));
      });
    });
  }

  async close(): Promise<void> {
    if (this.#built === undefined) return;
    const { exporter } = await this.#built;
    await exporter.shutdown().catch(() => undefined);
  }
}

function hr(ms: number): [number, number] {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

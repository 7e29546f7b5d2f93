/**
 * OTLP logs (HTTP/protobuf) through the OpenTelemetry JS exporter
 * (`@opentelemetry/exporter-logs-otlp-proto`), loaded only when a sink of
 * this kind is configured. Each record is one LogRecord: its time, a
 * severity from the OCSF severity, the event (OCSF or record) as the JSON
 * body, and `gatehouse.audit.seq` / `.hash` / `.event` attributes (plus
 * `ocsf.class_uid` / `ocsf.type_uid` for OCSF). The batch counts as shipped
 * when the exporter reports success (the collector answered 2xx) and the
 * collector's ExportLogsServiceResponse rejects none of it: a partial
 * success (`partial_success.rejected_log_records` > 0) is a refusal of the
 * batch (SinkError `rejected`), which the shipper splits until it finds the
 * record refused, as for a 400 (shipper.ts). What a collector says (status
 * text, error body, partial-success message) reaches the error without the
 * credentials just sent.
 */
import { hostname } from 'node:os';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import type { Encoded } from '../encode.js';
import { secretNames, type OtlpSinkConfig } from '../config.js';
import { scrub } from './http.js';
import { said, SinkError, type RenderSecret, type Sink } from './sink.js';

/** OCSF severity_id → OpenTelemetry SeverityNumber (logs data model): INFO 9, INFO2 10 (low), WARN 13, ERROR 17, FATAL 21. */
const SEVERITY: Record<number, [number, string]> = { 0: [9, 'INFO'], 1: [9, 'INFO'], 2: [10, 'INFO2'], 3: [13, 'WARN'], 4: [17, 'ERROR'], 5: [21, 'FATAL'], 6: [21, 'FATAL'] };

type Built = { exporter: OTLPLogExporter; resource: ReadableLogRecord['resource'] };

/** ExportLogsServiceResponse as the exporter decodes it (otlp-transformer, logs/export-response.ts). */
interface LogsAnswer {
  partialSuccess?: { rejectedLogRecords?: number | bigint | string; errorMessage?: string };
}

/**
 * Sends every decoded ExportLogsServiceResponse to `on`. The exporter hands
 * it to its delegate's response handler, which only logs a partial success
 * through the OpenTelemetry diag logger (unset here) and reports success: the
 * rejected records would be lost. The handler is otlp-exporter-base's own
 * extension point (IOtlpResponseHandler), not exposed by OTLPLogExporter's
 * options; a version without it is refused rather than shipping blind.
 */
function onAnswer(exporter: OTLPLogExporter, on: (answer: LogsAnswer) => void): void {
  const delegate = (exporter as unknown as { _delegate?: { _responseHandler?: { handleResponse?: unknown } } })._delegate;
  if (delegate === undefined || typeof delegate._responseHandler?.handleResponse !== 'function') {
    throw new SinkError('retry', 'OTLP: this @opentelemetry/exporter-logs-otlp-proto has no response handler to read partial successes from; not shipping (records would be lost unseen)');
  }
  delegate._responseHandler = { handleResponse: (r: unknown) => on((r ?? {}) as LogsAnswer) };
}

export class OtlpSink implements Sink {
  readonly #c: OtlpSinkConfig;
  readonly #render: RenderSecret;
  readonly #version: string;
  #built: Promise<Built> | undefined;
  /** The credentials of the last export (rendered, and each secret alone): scrubbed from what the collector says. */
  #secrets: string[] = [];
  /** The collector's answer to the export in flight (the handler runs just before the export's callback). */
  #answer: LogsAnswer | undefined;

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
          const secrets: string[] = [];
          for (const [k, v] of Object.entries(this.#c.headers)) {
            const value = await this.#render(v, `header ${k}`);
            out[k] = value;
            secrets.push(value);
            // Each credential alone too: a collector may quote the token without its "Bearer ".
            for (const name of secretNames(v)) secrets.push(await this.#render(`\${secret:${name}}`, `header ${k}`));
          }
          this.#secrets = secrets;
          return out;
        },
      });
      onAnswer(exporter, (answer) => (this.#answer = answer));
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
    const what = `OTLP ${new URL(this.#c.url).origin}`;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(new SinkError('retry', 'stopped'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.#answer = undefined;
      exporter.export(records, (result) => {
        signal.removeEventListener('abort', onAbort);
        const answer = this.#answer;
        this.#answer = undefined;
        const told = (text: string | undefined) => (text ? `: ${said(scrub(text, this.#secrets))}` : '');
        if (result.code === 0) {
          // OTLP "partial success": the collector took the request but not every record in it.
          const partial = answer?.partialSuccess;
          const rejected = Number(partial?.rejectedLogRecords ?? 0);
          if (!(rejected > 0)) return resolve();
          return reject(new SinkError('rejected', `${what}: the collector rejected ${rejected} of ${records.length} log records (partial success)${told(partial?.errorMessage)}`));
        }
        const err = result.error as (Error & { code?: number; data?: string }) | undefined;
        const status = typeof err?.code === 'number' ? err.code : undefined;
        const body = typeof err?.data === 'string' && err.data !== '' && err.data !== err.message ? ` (${said(scrub(err.data, this.#secrets))})` : '';
        const msg = `${what}: ${status !== undefined ? `HTTP ${status}` : 'export failed'}${told(err?.message)}${body}`;
        reject(new SinkError(status === 401 || status === 403 ? 'auth' : status === 400 || status === 413 ? 'rejected' : 'retry', msg));
      });
    });
  }

  async close(): Promise<void> {
    const built = await this.#built?.catch(() => undefined);
    await built?.exporter.shutdown().catch(() => undefined);
  }
}

function hr(ms: number): [number, number] {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

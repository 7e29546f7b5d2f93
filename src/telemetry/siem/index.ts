/**
 * SIEM shipping: one Shipper per configured sink (see shipper.ts), and
 * `shipperStats()`, what every running sink reports (backlog, last shipped
 * seq, last error), for `gatehouse status` and the metrics.
 */
import { join } from 'node:path';
import { Hono } from 'hono';
import type { Logger } from '../../log.js';
import { registerBacklogSource } from '../metrics.js';
import type { SiemConfig, SinkConfig } from './config.js';
import { ensureSiemDir } from './cursor.js';
import { Shipper, type ShipperStats } from './shipper.js';
import { HecSink, WebhookSink } from './sinks/http.js';
import { OtlpSink } from './sinks/otlp.js';
import type { RenderSecret, Sink } from './sinks/sink.js';
import { SyslogSink } from './sinks/syslog.js';

export type { ShipperStats } from './shipper.js';
export { loadSiemConfig, sinkSecrets, type SiemConfig } from './config.js';

export interface SiemOptions {
  stateDir: string;
  logger: Logger;
  /** Renders `${secret:NAME}` for a sink's token and headers, when sent. */
  render: RenderSecret;
  productVersion: string;
  /** Seq of the last record the writer appended (for the backlog). */
  head?: () => number;
}

export interface Siem {
  stats(): ShipperStats[];
  /** Ships what is waiting for up to `graceMs`, then stops every sink. */
  close(graceMs?: number): Promise<void>;
}

const running = new Set<Shipper>();

/** What every running sink reports: name, kind, backlog, last shipped seq, last error. Empty when nothing ships. */
export function shipperStats(): ShipperStats[] {
  return [...running].map((s) => s.stats());
}

export function createSink(c: SinkConfig, render: RenderSecret, productVersion: string): Sink {
  const scoped: RenderSecret = (template, where) => render(template, `${where} of SIEM sink "${c.name}"`);
  switch (c.kind) {
    case 'syslog':
      return new SyslogSink(c);
    case 'splunk-hec':
      return new HecSink(c, scoped);
    case 'webhook':
      return new WebhookSink(c, scoped);
    case 'otlp':
      return new OtlpSink(c, scoped, productVersion);
  }
}

export function startSiem(config: SiemConfig, o: SiemOptions): Siem {
  ensureSiemDir(o.stateDir);
  const shippers = config.sinks.map(
    (c) =>
      new Shipper({
        config: c,
        sink: createSink(c, o.render, o.productVersion),
        auditDir: join(o.stateDir, 'audit'),
        stateDir: o.stateDir,
        productVersion: o.productVersion,
        logger: o.logger,
        ...(o.head !== undefined ? { head: o.head } : {}),
      }),
  );
  // The backlog as a metric too: gatehouse_siem_backlog_records{sink} (src/telemetry/metrics.ts).
  const unregister = shippers.map((s) => registerBacklogSource(s.name, () => s.stats().backlog));
  for (const s of shippers) {
    running.add(s);
    s.start();
  }
  o.logger.info({ sinks: config.sinks.map((s) => `${s.name} (${s.kind})`), file: config.file }, 'siem: shipping the audit log');
  return {
    stats: () => shippers.map((s) => s.stats()),
    async close(graceMs = 1_000) {
      await Promise.all(shippers.map((s) => s.stop(graceMs)));
      for (const s of shippers) running.delete(s);
      for (const u of unregister) u();
    },
  };
}

/** `GET /` → `{ sinks: ShipperStats[] }` (admin API; mount behind admin authentication). */
export function siemRoutes(siem: () => Siem | undefined): Hono {
  const app = new Hono();
  app.get('/', (c) => c.json({ sinks: siem()?.stats() ?? [] }));
  return app;
}

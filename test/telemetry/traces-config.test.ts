/** Which OTEL_* settings turn tracing on, and how a value it cannot use is refused. */
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { tracingConfig } from '../../src/telemetry/traces.js';

const refusal = (env: NodeJS.ProcessEnv): GatehouseError => {
  try {
    tracingConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(GatehouseError);
    return e as GatehouseError;
  }
  throw new Error('accepted');
};

describe('tracingConfig', () => {
  it('is off without an endpoint, when the SDK is disabled, or with the none exporter', () => {
    expect(tracingConfig({})).toBeUndefined();
    expect(tracingConfig({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBeUndefined();
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBeUndefined();
  });

  it('defaults to http/protobuf, no content, service gatehouse; the traces endpoint and protocol win over the general ones', () => {
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toMatchObject({ protocol: 'http/protobuf', captureContent: false, serviceName: 'gatehouse', endpoint: 'http://c:4318' });
    const c = tracingConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'TRUE',
      OTEL_BSP_SCHEDULE_DELAY: '250',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    expect(c).toMatchObject({ protocol: 'grpc', endpoint: 'http://t:4317', captureContent: true, batch: { scheduledDelayMillis: 250 }, sampler: { name: 'parentbased_traceidratio', arg: 0.25 } });
  });

  it('never shows the credentials or query of an endpoint (log, start-up report)', () => {
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:s3cret@collector.example:4318/otlp?token=abc' })?.endpoint).toBe('https://collector.example:4318/otlp');
  });

  it('a value it cannot use is an error naming the variable and what to use', () => {
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).message).toMatch(/OTEL_EXPORTER_OTLP_PROTOCOL="http\/json".*http\/protobuf.*grpc/);
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'udp' }).message).toContain('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL');
    expect(refusal({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }).message).toContain('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'zipkin' }).message).toContain('OTEL_TRACES_EXPORTER');
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_BSP_MAX_QUEUE_SIZE: '-1' }).message).toContain('OTEL_BSP_MAX_QUEUE_SIZE');
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'sometimes' }).message).toContain('OTEL_TRACES_SAMPLER');
    expect(refusal({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER_ARG: '2' }).code).toBe('CONFIG_INVALID');
  });
});

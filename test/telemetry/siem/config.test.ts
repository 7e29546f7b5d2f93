/**
 * The SIEM shipping file: strict, errors naming file, line and key, and
 * credentials only as ${secret:NAME} — never a connector's.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/load-yaml.js';
import { SECRET_NAME as SECRETS_NAME, secretRefs } from '../../../src/secrets/template.js';
import { loadSiemConfig, SECRET_NAME, secretNames } from '../../../src/telemetry/siem/config.js';
import { backoffMs } from '../../../src/telemetry/siem/shipper.js';
import { tempDir } from '../../helpers/tmp.js';

function file(text: string): string {
  const f = join(tempDir(), 'siem.yaml');
  writeFileSync(f, text);
  return f;
}

function problems(text: string, owner?: (n: string) => string | undefined): string {
  const f = file(text);
  try {
    loadSiemConfig(f, owner === undefined ? {} : { secretOwner: owner });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message.replaceAll(f, 'FILE');
  }
  throw new Error('no error');
}

describe('SIEM shipping file', () => {
  it('a valid file, with every default', () => {
    const c = loadSiemConfig(file('sinks:\n  - name: splunk\n    kind: splunk-hec\n    url: https://splunk.example:8088\n    token: ${secret:splunk-hec-token}\n'));
    expect(c.sinks[0]).toMatchObject({ name: 'splunk', format: 'ocsf', start: 'beginning', batchRecords: 500, batchBytes: 512 * 1024, timeout: 30_000, retry: { initial: 1_000, max: 60_000 }, poll: 1_000, ack: false });
  });

  it('a misspelt key is an error naming file, line and key (not silently dropped)', () => {
    expect(problems('sinks:\n  - name: x\n    kind: webhook\n    url: https://h.example/in\n    hedaers: {}\n')).toBe('FILE:5:5: sinks[0].hedaers: unknown key "hedaers" (misspelt?)');
  });

  it('a literal HEC token is refused: the file never holds a credential', () => {
    expect(problems('sinks:\n  - name: s\n    kind: splunk-hec\n    url: https://s.example:8088\n    token: 8f2c1d5e-7a3b\n')).toMatch(/^FILE:5:5: sinks\[0\]\.token: must be a secret reference, e\.g\. "\$\{secret:splunk-hec-token\}" \(store the value with: gatehouse secret set splunk-hec-token\)/);
  });

  it('a credential header without a secret reference is refused', () => {
    expect(problems('sinks:\n  - name: w\n    kind: webhook\n    url: https://h.example/in\n    headers:\n      X-Api-Key: abc123\n')).toMatch(/^FILE:6:7: sinks\[0\]\.headers\.X-Api-Key: a credential header must reference a secret/);
  });

  it.each([
    ['url: http://siem.example/in', /use https \(plain http is accepted for 127\.0\.0\.1\/localhost only\)/],
    ['url: https://user:pw@siem.example/in', /no user:password in the URL/],
    ['url: https://siem.example/in?k=${secret:x}', /a URL may not contain a \$\{secret:\.\.\.\} reference/],
    ['url: ftp://siem.example/', /an http\(s\) URL/],
  ])('webhook %s is refused', (line, message) => {
    expect(problems(`sinks:\n  - name: w\n    kind: webhook\n    ${line}\n`)).toMatch(message);
  });

  it('headers that would reframe the request are refused', () => {
    expect(problems('sinks:\n  - name: w\n    kind: webhook\n    url: https://h.example/in\n    headers:\n      Content-Length: "5"\n')).toMatch(/headers\.Content-Length: the gateway sets Content-Length itself/);
  });

  it("a sink may not use a connector's credential (it would send it to the SIEM)", () => {
    const text = 'sinks:\n  - name: w\n    kind: webhook\n    url: https://h.example/in\n    headers:\n      Authorization: Bearer ${secret:github-token}\n';
    expect(problems(text, (n) => (n === 'github-token' ? 'github' : undefined))).toBe(
      'FILE:6:7: sinks[0].headers.Authorization: secret "github-token" belongs to connector "github": a sink would send that connector\'s credential to the SIEM; store the SIEM\'s own credential under another name',
    );
  });

  it('syslog: TLS options only with transport tls, cert and key together, the files must exist', () => {
    expect(problems('sinks:\n  - name: s\n    kind: syslog\n    transport: tcp\n    host: h\n    ca: /etc/hostname\n')).toMatch(/sinks\[0\]\.transport: ca, cert, key and servername are for transport: tls/);
    expect(problems('sinks:\n  - name: s\n    kind: syslog\n    transport: tls\n    host: h\n    cert: /etc/hostname\n')).toMatch(/sinks\[0\]\.key: cert and key go together/);
    expect(problems('sinks:\n  - name: s\n    kind: syslog\n    transport: tls\n    host: h\n    ca: /nonexistent/ca.pem\n')).toMatch(/FILE:6:5: sinks\[0\]\.ca: no such file/);
  });

  it('two sinks with one name (names key the cursor files) and a bare-number duration are refused', () => {
    const two = 'sinks:\n  - {name: a, kind: webhook, url: "https://h.example/1"}\n  - {name: a, kind: webhook, url: "https://h.example/2"}\n';
    expect(problems(two)).toMatch(/sinks\[1\]\.name: a second sink named "a"/);
    expect(problems('sinks:\n  - {name: a, kind: webhook, url: "https://h.example/1", timeout: 30}\n')).toMatch(/timeout: invalid duration 30; a bare number has no unit: write 30s, 30m or 30h/);
  });

  it("the secret grammar is the secrets module's (telemetry may not import it): both read every string alike", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('$', '{', '}', 's', 'e', 'c', 'r', 't', ':', 'a', '-', '.', '_', ' ', '9') }), (s) => {
        expect(secretNames(s)).toEqual(secretRefs(s));
        for (const n of secretNames(s)) expect(SECRET_NAME.test(n)).toBe(SECRETS_NAME.test(n));
      }),
      { numRuns: 2_000 },
    );
    expect(secretNames('Bearer ${secret:a.b-c_d}')).toEqual(['a.b-c_d']);
  });
});

describe('back-off', () => {
  it('grows exponentially with jitter between half and all of the step, and never past the maximum', () => {
    for (const r of [0, 0.5, 0.999]) {
      expect(backoffMs(1, 100, 10_000, () => r)).toBeGreaterThanOrEqual(50);
      expect(backoffMs(1, 100, 10_000, () => r)).toBeLessThan(100);
      expect(backoffMs(4, 100, 10_000, () => r)).toBeGreaterThanOrEqual(400);
      expect(backoffMs(4, 100, 10_000, () => r)).toBeLessThan(800);
      expect(backoffMs(60, 100, 10_000, () => r)).toBeLessThanOrEqual(10_000);
    }
    const spread = new Set(Array.from({ length: 50 }, () => backoffMs(5, 100, 10_000)));
    expect(spread.size).toBeGreaterThan(10);
  });
});

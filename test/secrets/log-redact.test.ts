import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACT_PATHS } from '../../src/log.js';

const SECRET = 'sup3r-s3cret-value';

function logged(obj: Record<string, unknown>): string {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString('utf8')));
  createLogger({ destination: out, level: 'info' }).info(obj, 'm');
  return text;
}

/** One object per path shape in REDACT_PATHS, with the secret where the path points. */
const SHAPES: Record<string, Record<string, unknown>> = {
  'headers.authorization': { headers: { authorization: SECRET, accept: 'x' } },
  'headers.Authorization': { headers: { Authorization: SECRET } },
  'headers["proxy-authorization"]': { headers: { 'proxy-authorization': SECRET } },
  'headers.cookie': { headers: { cookie: SECRET } },
  'headers["set-cookie"]': { headers: { 'set-cookie': SECRET } },
  'headers["x-api-key"]': { headers: { 'x-api-key': SECRET } },
  '*.headers.authorization': { req: { headers: { authorization: SECRET } } },
  '*.headers.Authorization': { upstream: { headers: { Authorization: SECRET } } },
  '*.headers["proxy-authorization"]': { req: { headers: { 'proxy-authorization': SECRET } } },
  '*.headers.cookie': { req: { headers: { cookie: SECRET } } },
  '*.headers["set-cookie"]': { res: { headers: { 'set-cookie': SECRET } } },
  '*.headers["x-api-key"]': { req: { headers: { 'x-api-key': SECRET } } },
  authorization: { authorization: SECRET },
  Authorization: { Authorization: SECRET },
  '*.authorization': { request: { authorization: SECRET } },
  '*.Authorization': { request: { Authorization: SECRET } },
  env: { env: { GITHUB_TOKEN: SECRET } },
  '*.env': { child: { env: { GITHUB_TOKEN: SECRET } } },
  token: { token: SECRET },
  '*.token': { agent: { token: SECRET } },
  secret: { secret: SECRET },
  '*.secret': { cfg: { secret: SECRET } },
  password: { password: SECRET },
  '*.password': { db: { password: SECRET } },
};

describe('pino redact paths', () => {
  it('every path in REDACT_PATHS has a shape under test', () => {
    expect(REDACT_PATHS.length).toBeGreaterThan(0);
    expect(Object.keys(SHAPES).sort()).toEqual([...REDACT_PATHS].sort());
  });

  for (const [path, obj] of Object.entries(SHAPES)) {
    it(`censors ${path}`, () => {
      const line = logged(obj);
      expect(line).not.toContain(SECRET);
      expect(line).toContain('[REDACTED]');
    });
  }

  it('leaves the rest of the record alone', () => {
    const line = logged({ headers: { authorization: SECRET, accept: 'text/plain' }, connector: 'github' });
    expect(JSON.parse(line)).toMatchObject({ headers: { authorization: '[REDACTED]', accept: 'text/plain' }, connector: 'github' });
  });
});

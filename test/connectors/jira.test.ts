import { describe, expect, it } from 'vitest';
import { adf, adfText, MAX_ADF_DEPTH, TOO_DEEP } from '../../src/connectors/jira/adf.js';
import { deploymentOfServerInfo, siteDeployment } from '../../src/connectors/jira/deployment.js';

describe('Jira deployment from the site, never from the credential', () => {
  it.each([
    ['https://acme.atlassian.net', 'cloud'],
    ['https://ACME.Atlassian.NET/', 'cloud'],
    ['https://api.atlassian.com/ex/jira/11223344-a1b2-3b33-c444-def123456789', 'cloud'],
    ['https://jira.acme.com', undefined],
    ['https://atlassian.net.evil.example', undefined],
    ['https://evilatlassian.net', undefined],
    ['http://127.0.0.1:8080/jira', undefined],
    ['not a url', undefined],
  ])('%s → %s', (url, d) => expect(siteDeployment(url)).toBe(d));

  it.each([
    [{ deploymentType: 'Cloud' }, 'cloud'],
    [{ deploymentType: 'Server' }, 'datacenter'],
    [{ deploymentType: 'DataCenter' }, 'datacenter'],
    [{ deploymentType: 'Something' }, undefined],
    [{}, undefined],
    ['Cloud', undefined],
    [null, undefined],
  ])('serverInfo %j → %s', (body, d) => expect(deploymentOfServerInfo(body)).toBe(d));
});

describe('ADF written from plain text', () => {
  it('single newlines become hardBreak nodes, blank lines separate paragraphs, no empty text node, no trailing break', () => {
    expect(adf('a\nb\n\n\nc\n')).toEqual({
      type: 'doc',
      version: 1,
      content: [
        { type: 'paragraph', content: [{ type: 'text', text: 'a' }, { type: 'hardBreak' }, { type: 'text', text: 'b' }] },
        { type: 'paragraph', content: [{ type: 'text', text: 'c' }] },
      ],
    });
    expect(adf('')).toEqual({ type: 'doc', version: 1, content: [{ type: 'paragraph', content: [] }] });
  });
  it('reads back what it wrote', () => {
    expect(adfText(adf('one\ntwo\n\nthree')).trim()).toBe('one\ntwo\nthree');
  });
});

describe('ADF read as text keeps the nodes that stand for text', () => {
  const doc = (...content: object[]) => ({ type: 'doc', version: 1, content: [{ type: 'paragraph', content }] });
  it.each([
    ['mention text', { type: 'mention', attrs: { id: 'abc', text: '@Ada' } }, '@Ada'],
    ['mention without text', { type: 'mention', attrs: { id: 'abc' } }, '@abc'],
    ['emoji text', { type: 'emoji', attrs: { shortName: ':smile:', text: '😄' } }, '😄'],
    ['emoji shortName', { type: 'emoji', attrs: { shortName: ':custom:' } }, ':custom:'],
    ['inlineCard url', { type: 'inlineCard', attrs: { url: 'https://x.example/1' } }, 'https://x.example/1'],
    ['date', { type: 'date', attrs: { timestamp: '1582152559000' } }, '2020-02-19'],
    ['date garbage', { type: 'date', attrs: { timestamp: 'soon' } }, ''],
    ['status', { type: 'status', attrs: { text: 'DONE', color: 'green' } }, 'DONE'],
    ['unknown inline', { type: 'somethingNew', attrs: { text: 'x' } }, ''],
  ])('%s', (_what, node, text) => expect(adfText(doc(node)).trim()).toBe(text));
});

describe('ADF nested deeper than any real document', () => {
  /** `depth` blockquotes around one paragraph of `text`, built without recursion. */
  const nested = (depth: number, text: string) => {
    let n: object = { type: 'paragraph', content: [{ type: 'text', text }] };
    for (let i = 0; i < depth; i++) n = { type: 'blockquote', content: [n] };
    return { type: 'doc', version: 1, content: [n] };
  };

  it("a Jira site sending ADF nested 200 000 deep cannot overflow the gateway's stack (adfText stops at MAX_ADF_DEPTH)", () => {
    // The answer as it arrives: JSON.parse is iterative in V8, so it parses, and a recursive reader would throw RangeError.
    const n = 200_000;
    const body = `{"type":"doc","version":1,"content":[${'{"type":"blockquote","content":['.repeat(n)}{"type":"text","text":"buried"}${']}'.repeat(n)}]}`;
    const doc = JSON.parse(body) as unknown;
    let text = '';
    expect(() => (text = adfText(doc))).not.toThrow();
    expect(text).toContain(TOO_DEEP);
    expect(text).not.toContain('buried');
  });

  it('a document nested up to the limit is read whole', () => {
    expect(adfText(nested(MAX_ADF_DEPTH - 2, 'kept')).trim()).toBe('kept');
    expect(adfText(nested(MAX_ADF_DEPTH, 'cut'))).toContain(TOO_DEEP);
  });
});

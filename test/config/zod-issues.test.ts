import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatZodIssues, issueMessage, issuePath, keyOf } from '../../src/config/zod-issues.js';

const Schema = z.strictObject({ rules: z.array(z.strictObject({ id: z.string(), effect: z.enum(['allow', 'deny']) })), grant: z.strictObject({ ttl: z.string() }).optional() });
const issuesOf = (v: unknown) => Schema.safeParse(v, { reportInput: true }).error?.issues ?? [];

describe('one zod-issue formatter', () => {
  it('names the key the way a reader writes it (rules[0].id)', () => {
    expect(keyOf(['rules', 0, 'id'])).toBe('rules[0].id');
    expect(keyOf([])).toBe('');
  });

  it('points a single unknown key at itself and calls it misspelt', () => {
    const [i] = issuesOf({ rules: [], grant: { ttl: '1h', tll: 'x' } });
    expect(i && keyOf(issuePath(i))).toBe('grant.tll');
    expect(i && issueMessage(i)).toBe('unknown key "tll" (misspelt?)');
  });

  it('says a required key is missing, with the values it may take', () => {
    const issues = issuesOf({ rules: [{ id: 'r' }] });
    expect(issues.map(issueMessage)).toEqual(['required key is missing (one of: allow, deny)']);
  });

  it('puts issues on one line, at most max, with how many more', () => {
    const issues = issuesOf({ rules: [{ id: 1, effect: 'x' }, { id: 2, effect: 'y' }] });
    expect(formatZodIssues(issues, 2)).toMatch(/^rules\[0\]\.id: .+; rules\[0\]\.effect: .+; and 2 more$/);
    expect(formatZodIssues(z.object({ a: z.string() }).safeParse([]).error?.issues ?? [])).toMatch(/^\(top level\): /);
  });
});

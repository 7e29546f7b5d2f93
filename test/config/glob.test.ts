import { describe, expect, it } from 'vitest';
import { globProblem } from '../../src/config/glob.js';

const malformed: Array<[string, RegExp]> = [
  ['{a,b', /unbalanced brace: "\{" at character 1 is never closed/],
  ['a,b}', /unbalanced brace: "\}" at character 4 closes no "\{"/],
  ['{a,{b}', /unbalanced brace: "\{" at character 1 is never closed/],
  ['[z-a]', /reversed range "z-a" in "\[z-a\]" at character 1: write "a-z"/],
  ['[!9-0]*', /reversed range "9-0"/],
  ['file[0-9', /unclosed "\[" at character 5/],
  ['[', /unclosed "\["/],
  ['trailing\\', /a trailing "\\" escapes nothing/],
];

const wellFormed = ['*', 'github__*', '{create,update}_*', '{a,{b,c}}', '[a-z]*', '[!a-c]', '[]]', '[a-]', '[[:alpha:]]*', '\\{literal\\}', '\\[x', '/repo/**/*.{ts,js}', 'claude-*', '[\\]-a]'];

describe('globs are checked at load', () => {
  it('has cases to run (guard)', () => {
    expect(malformed.length).toBeGreaterThan(5);
    expect(wellFormed.length).toBeGreaterThan(5);
  });

  it.each(malformed)('refuses %j', (glob, why) => {
    expect(globProblem(glob)).toMatch(why);
  });

  it.each(wellFormed)('accepts %j', (glob) => {
    expect(globProblem(glob)).toBeUndefined();
  });
});

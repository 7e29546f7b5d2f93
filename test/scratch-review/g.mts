import picomatch from 'picomatch';
import { globProblem } from '../../src/config/glob.ts';
import { globToRe2 } from '../../src/policy/arg-glob.ts';
const cases: [string, string[]][] = [
  ['@(foo', ['@(foo','foo']], ['+(a', ['+(a','a']], ['!(a', ['!(a','b']], ['a(b', ['a(b']], ['[[:alpha:]', ['[a','a']], ['a]', ['a]']], ['[!]', ['[!]','x']], ['[]]', [']']], ['[a-]', ['a','-']],
  ['{a,[\\]}]}', ['a', ']', '}', 'a]}']], ['[\\]]', [']']], ['delete_{repo', ['delete_{repo']], ['{a}', ['a','{a}']], ['[^a]', ['b']], ['*.{js,ts', ['a.{js,ts']],
  ['[:alpha:]', ['a',':']], ['a/**', ['a/b']], ['\\*', ['*']], ['[a-z', ['[a-z']], ['(a|b)', ['a','(a|b)']], ['a|b', ['a','a|b']], ['$(x)', ['$(x)']], ['?(a', ['?(a', 'a']],
];
for (const [g, ins] of cases) {
  const m = picomatch(g, { dot: true, nobrace: false });
  let re = '';
  try { re = globToRe2(g); } catch (e) { re = 'THROW ' + (e as Error).message; }
  console.log(JSON.stringify(g), '| problem:', globProblem(g) ?? '-', '| pm:', ins.map((s) => `${s}=${m(s)}`).join(' '), '| re2:', re);
}

import picomatch from 'picomatch';
import { globToRe2, compileArgGlob } from '../../src/policy/arg-glob.ts';
const cases: [string, string[]][] = [
  ['[\\]]', [']', '\\]', '\\']], ['[!]a]', [']', 'a', 'b', '!']], ['[a\\-z]', ['a','-','z','b']], ['[\\\\]', ['\\']], ['/etc/[\\]p]asswd', ['/etc/passwd', '/etc/]asswd', '/etc/\\asswd']], ['[x\\]]y', ['xy', ']y', 'x]y']],
];
for (const [g, ins] of cases) {
  const m = picomatch(g, { dot: true });
  let c: ((s: string) => boolean) | undefined; let re = '';
  try { re = globToRe2(g); c = compileArgGlob(g); } catch (e) { re = 'THROW ' + (e as Error).message; }
  console.log(JSON.stringify(g), re, '| pm:', ins.map((s) => `${JSON.stringify(s)}=${m(s)}`).join(' '), '| re2:', c ? ins.map((s) => `${JSON.stringify(s)}=${c!(s)}`).join(' ') : '-');
}

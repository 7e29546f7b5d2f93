import picomatch from 'picomatch'
import { RE2JS } from 're2js'
for (const p of ['src/*.ts','src/**','**/*.env','*a*a*a*a*a*b','{a,b}/*.md','**/.git/**','file?.txt','[abc]*.js', '!(*.md)']) {
  const re = picomatch.makeRe(p, { dot: true })
  let ok; try { RE2JS.compile(re.source); ok='re2 ok' } catch (e) { ok = 're2 FAIL ' + e.message.slice(0,60) }
  console.log(p, re.source, ok)
}
const re = picomatch.makeRe('*a*a*a*a*a*b', { dot: true }); const t=performance.now(); re.test('a'.repeat(3000)); console.log('ms', performance.now()-t)

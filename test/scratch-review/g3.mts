import picomatch from 'picomatch';
for (const g of ['[!\\]]', '[^\\]]', '[!a]', '[!\\]a]']) { const m = picomatch(g, { dot: true }); console.log(g, picomatch.makeRe(g, {dot:true}).source, [']', 'a', 'b', ']]', 'a]'].map((s) => `${s}=${m(s)}`).join(' ')); }

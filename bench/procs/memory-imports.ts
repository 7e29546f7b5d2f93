/**
 * A fresh Node process that imports modules in steps and measures after each
 * (the memory bench's start-up breakdown):
 *   node --expose-gc dist/bench/procs/memory-imports.js '[["label", ["file:///…", …]], …]' [scripts]
 * prints one JSON line {before, steps: [{label, after}], scripts?}: memory
 * after two full GCs before any step and after each; with `scripts`, every
 * script the isolate compiled (to see what a step pulled in).
 */
import { loadedScripts, memoryNow, type MemoryNow } from './memory-measure.js';

const [stepsJson, withScripts] = process.argv.slice(2);
if (stepsJson === undefined || (withScripts !== undefined && withScripts !== 'scripts')) throw new Error("usage: memory-imports.js STEPS_JSON ['scripts']");
const steps = JSON.parse(stepsJson) as Array<[string, string[]]>;

const before = memoryNow();
const after: Array<{ label: string; after: MemoryNow }> = [];
for (const [label, urls] of steps) {
  for (const url of urls) await import(url);
  after.push({ label, after: memoryNow() });
}
const scripts = withScripts === 'scripts' ? await loadedScripts() : undefined;
process.stdout.write(JSON.stringify({ before, steps: after, ...(scripts ? { scripts } : {}) }) + '\n');
process.exit(0);

import { genericYaml } from '../../src/cli/connector-add.ts';
import { parse } from 'yaml';
const t = genericYaml({ name: 'x', registryDir: '/tmp', command: ['node', 'a\nenabled: false\nsampling: allow', '#x', '- y', '{a: b}'], description: 'd\nsampling: allow\n# c\n---\nname: y' });
console.log(t); console.log(JSON.stringify(parse(t)));
const u = genericYaml({ name: 'x', registryDir: '/tmp', url: 'https://a/mcp\nsampling: allow', headers: ['X: v\nsampling: allow', 'Y: ${secret:a}\n'] });
console.log(u); console.log(JSON.stringify(parse(u)));

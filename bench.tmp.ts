import { benchPolicy } from './bench/policy.js';
console.log(await benchPolicy());

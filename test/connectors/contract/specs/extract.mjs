// Extracts the operations the built-in connectors use from a provider's
// published OpenAPI/Swagger document, unmodified: the listed path items as
// they are, plus every component they reach through $ref (transitively).
//   node extract.mjs slack <slack_web_openapi_v2.json>
//   node extract.mjs jira  <swagger-v3.v3.json>
// Sources, commits and dates: README.md next to this file.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const KEEP = {
  slack: {
    out: 'slack-web-api.subset.json',
    paths: ['/auth.test', '/conversations.list', '/conversations.history', '/conversations.replies', '/chat.postMessage'],
  },
  jira: {
    out: 'jira-cloud-platform-v3.subset.json',
    paths: [
      '/rest/api/3/myself',
      '/rest/api/3/serverInfo',
      '/rest/api/3/search/jql',
      '/rest/api/3/issue',
      '/rest/api/3/issue/{issueIdOrKey}',
      '/rest/api/3/issue/{issueIdOrKey}/comment',
      '/rest/api/3/issue/{issueIdOrKey}/transitions',
    ],
  },
};

const [which, source] = process.argv.slice(2);
const keep = KEEP[which];
if (!keep || !source) {
  console.error('usage: node extract.mjs slack|jira <full document>');
  process.exit(2);
}
const text = readFileSync(source, 'utf8');
const doc = JSON.parse(text);

const out = {};
for (const k of Object.keys(doc)) if (k !== 'paths' && k !== 'components' && k !== 'definitions' && k !== 'parameters' && k !== 'responses' && k !== 'tags') out[k] = doc[k];
out['x-gatehouse-extract'] = { source: 'see README.md', sha256: createHash('sha256').update(text).digest('hex'), paths: keep.paths };
out.paths = {};
for (const p of keep.paths) {
  if (!doc.paths[p]) throw new Error(`${p} is not in ${source}`);
  out.paths[p] = doc.paths[p];
}

// "#/components/schemas/X" or "#/definitions/X": copy the target, then what it refers to.
const seen = new Set();
const pending = [out.paths];
if (doc.components?.securitySchemes) pending.push(doc.components.securitySchemes);
const put = (pointer) => {
  const parts = pointer.slice(2).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let src = doc;
  let dst = out;
  for (let i = 0; i < parts.length; i++) {
    src = src?.[parts[i]];
    if (src === undefined) throw new Error(`dangling $ref ${pointer}`);
    if (i === parts.length - 1) dst[parts[i]] = src;
    else dst = dst[parts[i]] ??= {};
  }
  pending.push(src);
};
while (pending.length > 0) {
  const node = pending.pop();
  if (Array.isArray(node)) pending.push(...node);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/')) {
        if (!seen.has(v)) {
          seen.add(v);
          put(v);
        }
      } else pending.push(v);
    }
  }
}
if (doc.components?.securitySchemes) (out.components ??= {}).securitySchemes = doc.components.securitySchemes;

const here = dirname(fileURLToPath(import.meta.url));
writeFileSync(join(here, keep.out), `${JSON.stringify(out, null, 1)}\n`);
console.log(`${keep.out}: ${keep.paths.length} paths, ${seen.size} components, source sha256 ${out['x-gatehouse-extract'].sha256}`);

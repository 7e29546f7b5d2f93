// Copies the response examples GitHub's REST description documents (npm
// @octokit/openapi, api.github.com.json, components/examples) that the GitHub
// simulator builds its answers from, unmodified, to ../../sim/github-examples.json.
//   node extract-github-examples.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const pkg = dirname(require.resolve('@octokit/openapi/package.json'));
const doc = JSON.parse(readFileSync(join(pkg, 'generated', 'api.github.com.json'), 'utf8'));
const ex = (name) => {
  const e = doc.components.examples[name];
  if (!e) throw new Error(`no example ${name}`);
  return e.value;
};
const out = {
  source: `@octokit/openapi ${JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version}, generated/api.github.com.json, components/examples`,
  user: ex('private-user-response-with-public-and-private-profile-information'),
  issue: ex('issue'),
  issueComment: ex('issue-comment'),
  pullRequest: ex('pull-request'),
  pullRequestSimple: ex('pull-request-simple-items')[0],
  contentFile: ex('content-file-response-if-content-is-a-file'),
  contentDirectoryEntry: ex('content-file-response-if-content-is-a-directory')[0],
  issueSearchItem: ex('issue-search-result-item-paginated').items[0],
  codeSearchItem: ex('code-search-result-item-paginated').items[0],
};
const here = dirname(fileURLToPath(import.meta.url));
writeFileSync(join(here, '..', '..', 'sim', 'github-examples.json'), `${JSON.stringify(out, null, 1)}\n`);

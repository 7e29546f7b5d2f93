// Copies the response examples GitHub's REST description documents (npm
// @octokit/openapi, api.github.com.json, components/examples) that the GitHub
// simulator builds its answers from, unmodified, to ../../sim/github-examples.json.
// Reads the copy scripts/test-deps.sh installs into .cache/specs (as the tests do).
//   node extract-github-examples.mjs
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..', '..', '..', '..', '.cache', 'specs', 'node_modules', '@octokit', 'openapi');
if (!existsSync(join(pkg, 'package.json'))) throw new Error('@octokit/openapi is not in .cache/specs: run `sh scripts/test-deps.sh`');
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
writeFileSync(join(here, '..', '..', 'sim', 'github-examples.json'), `${JSON.stringify(out, null, 1)}\n`);

/**
 * The published descriptions the built-in connectors are held to, loaded the
 * same way for every test that reads them (the contract tests, and the check
 * that every documented status maps to an error that says what to do).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Description, type DescriptionOptions, type Waiver } from './openapi.js';

/**
 * npm @octokit/openapi (≈ 385 MB unpacked) is installed by scripts/test-deps.sh
 * into .cache/specs, not as a devDependency, so that `npm ci` for users stays small.
 */
const GITHUB_SPEC = { name: '@octokit/openapi', version: '23.0.2' } as const;
const octokit = join(import.meta.dirname, '..', '..', '..', '.cache', 'specs', 'node_modules', '@octokit', 'openapi');

/** A missing or other version fails the tests (never skips them), naming the fix. */
function githubDocument(file: string): string {
  const path = join(octokit, 'generated', file);
  const manifest = join(octokit, 'package.json');
  const found = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: unknown }).version : undefined;
  const wanted = `${GITHUB_SPEC.name}@${GITHUB_SPEC.version}`;
  const problem =
    found === undefined ? `${wanted} is not installed in .cache/specs`
    : found !== GITHUB_SPEC.version ? `.cache/specs holds ${GITHUB_SPEC.name} ${String(found)}, not ${GITHUB_SPEC.version}`
    : !existsSync(path) ? `.cache/specs/…/${GITHUB_SPEC.name} has no generated/${file}`
    : undefined;
  if (problem !== undefined) throw new Error(`GitHub's REST description: ${problem}; run \`sh scripts/test-deps.sh\` (it installs ${wanted} there, outside devDependencies)`);
  return path;
}

// https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api and
// .../rate-limits-for-the-rest-api: any operation may answer 401, or 403/429 for a rate limit, with a Basic Error body.
const GITHUB_SHARED = { '401': '#/components/schemas/basic-error', '403': '#/components/schemas/basic-error', '429': '#/components/schemas/basic-error' };
/** Where the operation's own text documents more than its machine-readable part (each waiver must stay in use). */
export const GITHUB_WAIVERS: Waiver[] = [
  { operation: 'repos/get-content', at: 'path', value: '(omitted)', why: 'its description: "If you omit the `path` parameter, you will receive the contents of the repository\'s root directory."' },
  { operation: 'repos/get-content', status: '200', at: 'content-type', value: 'application/vnd.github.raw+json', why: 'its description lists the custom media type application/vnd.github.raw+json: "Returns the raw file contents for files and symlinks."' },
];
const GITHUB_DOCUMENTS: Array<[string, DescriptionOptions]> = [
  ['api.github.com.json', { name: 'api.github.com', shared: GITHUB_SHARED, waivers: GITHUB_WAIVERS }],
  ['ghes-3.17.json', { name: 'GHES 3.17', shared: GITHUB_SHARED, waivers: GITHUB_WAIVERS }],
  ['ghes-3.19.json', { name: 'GHES 3.19', shared: GITHUB_SHARED, waivers: GITHUB_WAIVERS }],
];

/** npm @octokit/openapi: api.github.com, and the oldest and newest GitHub Enterprise Server it ships (~10 MB each: load once per file). */
export function githubDescriptions(): Description[] {
  return GITHUB_DOCUMENTS.map(([file, opts]) => Description.load(githubDocument(file), opts));
}

/** Atlassian's Jira Cloud platform REST v3 description, vendored in specs/. */
export function jiraCloudDescription(): Description {
  return Description.load(join(import.meta.dirname, 'specs', 'jira-cloud-platform-v3.subset.json'), {
    name: 'Jira Cloud REST v3',
    // https://developer.atlassian.com/cloud/jira/platform/rate-limiting/: any operation may answer 429 with Retry-After (no body documented).
    shared: { '429': '' },
  });
}

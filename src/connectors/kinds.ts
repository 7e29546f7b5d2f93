/**
 * The built-in connector kinds' registry schemas, and what the registry
 * needs to know about them without loading their code (imported by
 * src/registry/schema.ts, so kept free of anything heavier).
 */
import { GithubConnectorSchema, type GithubConnectorConfig } from './github/schema.js';
import { JiraConnectorSchema, type JiraConnectorConfig } from './jira/schema.js';
import { SlackConnectorSchema, type SlackConnectorConfig } from './slack/schema.js';

export { GithubConnectorSchema, JiraConnectorSchema, SlackConnectorSchema };
export type { GithubConnectorConfig, JiraConnectorConfig, SlackConnectorConfig };

export type BuiltinConnectorConfig = GithubConnectorConfig | SlackConnectorConfig | JiraConnectorConfig;
export type BuiltinKind = BuiltinConnectorConfig['kind'];
export const BUILTIN_KINDS: readonly BuiltinKind[] = ['github', 'slack', 'jira'];

export function isBuiltinKind(kind: string): kind is BuiltinKind {
  return (BUILTIN_KINDS as readonly string[]).includes(kind);
}

/** The templated values that hold a built-in's credential (each may reference secrets). */
export function credentialTemplates(c: BuiltinConnectorConfig): string[] {
  switch (c.kind) {
    case 'github':
    case 'slack':
      return [c.token];
    case 'jira':
      return 'pat' in c.auth ? [c.auth.pat] : [c.auth.email, c.auth.apiToken];
  }
}

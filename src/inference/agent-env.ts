/**
 * What an agent inside `gatehouse run` needs to find its model: the variables
 * agent CLIs already read, pointing at the gateway's /llm/<provider> route
 * (through the sandbox's relay), and a placeholder where a CLI insists on a
 * key. No real key is ever in here: the gateway adds it on the way out.
 */
import type { InferenceProvider } from '../registry/schema.js';

/** What agents get as their "API key": not a secret, dropped by the gateway. */
export const PLACEHOLDER_KEY = 'gatehouse-placeholder-not-a-key';

export interface ModelEnv {
  env: Record<string, string>;
  /** Human lines: which provider each standard variable points at. */
  notes: string[];
}

/**
 * `base` is the gateway as the agent reaches it (e.g. http://127.0.0.1:8931).
 * The first enabled provider of each API (by name), or the one named in
 * `prefer`, fills that API's standard variables; every provider also gets
 * GATEHOUSE_LLM_<NAME>_URL.
 */
export function modelEnv(providers: readonly InferenceProvider[], base: string, prefer: readonly string[] = []): ModelEnv {
  const env: Record<string, string> = {};
  const notes: string[] = [];
  const usable = providers.filter((p) => p.enabled).sort((a, b) => a.name.localeCompare(b.name));
  for (const p of usable) env[`GATEHOUSE_LLM_${p.name.toUpperCase().replace(/-/g, '_')}_URL`] = `${base}/llm/${p.name}`;
  const pick = (api: InferenceProvider['api']) => usable.find((p) => p.api === api && prefer.includes(p.name)) ?? usable.find((p) => p.api === api);
  const anthropic = pick('anthropic');
  if (anthropic) {
    env.ANTHROPIC_BASE_URL = `${base}/llm/${anthropic.name}`;
    env.ANTHROPIC_API_KEY = PLACEHOLDER_KEY;
    notes.push(`ANTHROPIC_BASE_URL → provider "${anthropic.name}"`);
  }
  const openai = pick('openai');
  if (openai) {
    // The OpenAI SDKs take the base with /v1; older tools read OPENAI_API_BASE.
    env.OPENAI_BASE_URL = `${base}/llm/${openai.name}/v1`;
    env.OPENAI_API_BASE = env.OPENAI_BASE_URL;
    env.OPENAI_API_KEY = PLACEHOLDER_KEY;
    notes.push(`OPENAI_BASE_URL → provider "${openai.name}"`);
  }
  return { env, notes };
}

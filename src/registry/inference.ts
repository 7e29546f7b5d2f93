/**
 * Model providers (`kind: inference`): registry entries like connectors, served
 * on /llm/<name>/… (src/inference/). The key is a header template whose
 * secret comes from the keychain; the agent never holds it.
 */
import { z } from 'zod';
import { globString } from '../config/glob.js';
import { LimitSchema } from '../policy/schema.js';
import { common, serviceUrl, templated, duration } from './fields.js';

export const INFERENCE_APIS = ['anthropic', 'openai'] as const;
export type InferenceApi = (typeof INFERENCE_APIS)[number];

export const DEFAULT_MODEL_BODY_BYTES = 32 * 1024 * 1024;

const Budget = z.strictObject({
  /** Model calls per period, per agent. */
  requests: LimitSchema.optional(),
  /** Tokens (input + output, as the provider reports them) per period, per agent. */
  tokens: LimitSchema.optional(),
});

export const InferenceProviderSchema = z.strictObject({
  name: common.name,
  description: common.description,
  enabled: common.enabled,
  kind: z.literal('inference'),
  api: z.enum(INFERENCE_APIS, 'api: anthropic (Messages API) or openai (Chat Completions, Responses, Embeddings, Models)'),
  /** The provider's base URL; the agent's path (/v1/…) is appended. */
  url: serviceUrl('url'),
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name (RFC 9110 token)'), templated).default({}),
  models: z.strictObject({
    allow: z.array(globString).min(1, 'models.allow: name at least one model glob, e.g. ["claude-*"] (or ["*"])'),
    deny: z.array(globString).default([]),
  }),
  /** Per agent; a spent budget is refused up front with 429 and retry-after. */
  budget: Budget.default({}),
  /** Per-agent overrides of `budget`, by agent name glob (the first that matches). */
  budgets: z.record(globString, Budget).default({}),
  audit: z.strictObject({ content: z.enum(['none', 'hash', 'full']).default('none') }).default({ content: 'none' }),
  maxBodyBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(DEFAULT_MODEL_BODY_BYTES),
  timeouts: z
    .strictObject({
      connect: duration.optional(),
      /** Until the provider's response headers (a long prompt can take minutes). */
      firstByte: duration.optional(),
      /** Between two chunks of a response. */
      idle: duration.optional(),
    })
    .default({}),
});

export type InferenceProviderConfig = z.output<typeof InferenceProviderSchema>;

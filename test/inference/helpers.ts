/** What the inference tests share: the provider keys held in the secret store, and a policy. */
export const REAL_KEY = 'sk-ant-real-0123456789abcdef';
export const OPENAI_KEY = 'sk-openai-real-abcdef0123456789';

/** Models for everyone but mallory, whose rule names her (an explicit deny). */
export const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'mallory-no-models', match: { agent: 'mallory', model: '*' }, effect: 'deny', message: 'mallory may not use models' },
    { id: 'models', match: { model: '*' }, effect: 'allow' },
  ],
};

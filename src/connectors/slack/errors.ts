/**
 * Slack's `{"ok": false, "error": CODE}` answers (HTTP 200) → tool errors
 * that say what to do. Each code's meaning is Slack's own wording
 * (https://docs.slack.dev/reference/methods, each method's "Errors" table,
 * and the errors common to every method). Only a bad credential asks for a
 * new one: a policy block (an admin setting, Enterprise Key Management, a
 * workspace the app was not added to) is the admin's to lift, not a token's.
 */
import { fixCredential, ProviderError, providerDetail, retryAfterMs, sanitize, whenText, type ErrorContext, type FailureKind, type ResponseFacts } from '../errors.js';

interface SlackCode {
  kind: FailureKind;
  /** What Slack means by it. */
  says: string;
  /** What the user (or their Slack admin) should do; may use the answer's `needed` scope. */
  fix: (ctx: ErrorContext, needed: string | undefined) => string;
}

const reinstall = (ctx: ErrorContext) => `Reinstall the Slack app to the workspace and store its new bot token. ${fixCredential(ctx)}.`;
const admin = (what: string) => () => `${what} The token itself is valid: storing another one does not help.`;
const args = () => 'Fix the arguments and try again.';
const later = () => 'Try again later.';
const bug = 'This is a Gatehouse connector bug: report it with the tool that failed.';

const CODES: Readonly<Record<string, SlackCode>> = {
  // The credential itself.
  not_authed: { kind: 'auth', says: 'no token was sent', fix: (ctx) => `${fixCredential(ctx)}.` },
  invalid_auth: {
    kind: 'auth',
    says: 'the token is invalid, or the request came from an IP address the workspace does not allow',
    fix: (ctx) => `${fixCredential(ctx)}; if the token is right, ask a Slack admin whether the workspace limits API calls by IP address.`,
  },
  account_inactive: { kind: 'auth', says: "the token belongs to a deleted user or workspace (for a bot token: the app's bot was deactivated)", fix: reinstall },
  token_revoked: { kind: 'auth', says: 'the token was revoked or the app was removed from the workspace', fix: reinstall },
  token_expired: {
    kind: 'auth',
    says: 'the token expired (token rotation is on for this app)',
    fix: (ctx) => `Gatehouse does not refresh rotating tokens: turn token rotation off for the app (or store a fresh token each time). ${fixCredential(ctx)}.`,
  },
  not_allowed_token_type: {
    kind: 'auth',
    says: 'this method does not take this kind of token',
    fix: (ctx) => `The connector needs a bot token (xoxb-…), not a user, app-level or configuration token. ${fixCredential(ctx)}.`,
  },
  // Permissions the app was not given: the app's configuration.
  missing_scope: {
    kind: 'forbidden',
    says: 'the token lacks a scope this method needs',
    fix: (_ctx, needed) => `Add the missing scope${needed !== undefined ? ` (${needed})` : ''} to the Slack app (OAuth & Permissions) and reinstall it to the workspace.`,
  },
  no_permission: { kind: 'forbidden', says: 'the token lacks the permission this needs', fix: () => 'Make the app a member of the conversation (/invite @app), or ask a Slack admin for the permission.' },
  not_in_channel: { kind: 'forbidden', says: 'the bot is not a member of that channel', fix: () => 'Invite the app to the channel (/invite @app) and try again.' },
  // Policy blocks: only a Slack admin can lift them.
  ekm_access_denied: { kind: 'forbidden', says: 'administrators have suspended access to this content (Enterprise Key Management)', fix: admin('Ask a Slack admin: the workspace revoked the keys for it.') },
  access_denied: { kind: 'forbidden', says: 'access to a resource in the request is denied', fix: admin('Ask a Slack admin or the channel owner for access to it.') },
  team_access_not_granted: {
    kind: 'forbidden',
    says: 'the token is not granted access to the workspace this request needs',
    fix: admin('Ask an org admin to add the app to that workspace (Enterprise Grid: an org-wide app is added per workspace).'),
  },
  restricted_action: { kind: 'forbidden', says: 'a workspace preference prevents the app from doing this', fix: admin('A Slack admin must allow it in the workspace settings; retrying does not help.') },
  restricted_action_read_only_channel: { kind: 'forbidden', says: 'the channel is read-only', fix: admin('Post in another channel, or ask a channel manager to allow posting.') },
  restricted_action_thread_only_channel: { kind: 'forbidden', says: 'the channel takes replies in threads only', fix: () => 'Reply in a thread (reply_in_thread) instead.' },
  restricted_action_non_threadable_channel: { kind: 'forbidden', says: 'the channel does not take thread replies', fix: () => 'Post to the channel (post_message) instead.' },
  restricted_action_thread_locked: { kind: 'forbidden', says: 'admins locked this thread', fix: admin('Ask a Slack admin to unlock the thread, or post elsewhere.') },
  enterprise_is_restricted: { kind: 'forbidden', says: 'this method cannot be called from an Enterprise organization', fix: admin('Use a workspace-level installation of the app.') },
  accesslimited: { kind: 'forbidden', says: 'access to this method is limited on the network the gateway calls from', fix: admin('Ask a Slack admin to allow API calls from this network.') },
  two_factor_setup_required: { kind: 'forbidden', says: "the token's user must set up two-factor authentication", fix: admin('Set up two-factor authentication for that user.') },
  is_bot: { kind: 'forbidden', says: 'a legacy bot may not call this method', fix: (ctx) => `Use a Slack app's bot token. ${fixCredential(ctx)}.` },
  messages_tab_disabled: { kind: 'forbidden', says: "the app's Messages tab is disabled, so it cannot be messaged directly", fix: () => "Enable the Messages tab in the app's App Home settings, or post to a channel." },
  is_archived: { kind: 'forbidden', says: 'the channel is archived', fix: () => 'Unarchive the channel or use another one.' },
  channel_is_archived: { kind: 'forbidden', says: 'the channel is archived', fix: () => 'Unarchive the channel or use another one.' },
  cannot_reply_to_message: { kind: 'invalid', says: 'this message type cannot have thread replies', fix: () => 'Reply to another message, or post to the channel.' },
  // Not there, or not visible to the bot.
  channel_not_found: {
    kind: 'not_found',
    says: 'no such channel, or the bot cannot see it',
    fix: () => 'Check the channel id (list_channels gives ids); a private channel needs the app invited to it first.',
  },
  thread_not_found: { kind: 'not_found', says: 'no thread with that timestamp', fix: () => "Check thread_ts: it is the parent message's ts (read_channel_history gives it)." },
  message_not_found: { kind: 'not_found', says: 'no message with that timestamp', fix: () => 'Check the timestamp (read_channel_history gives it).' },
  user_not_found: { kind: 'not_found', says: 'no such user', fix: () => 'Check the user id.' },
  // Arguments.
  invalid_arguments: { kind: 'invalid', says: 'the method was called with invalid arguments', fix: args },
  invalid_arg_name: { kind: 'invalid', says: 'an argument name is not accepted', fix: args },
  invalid_array_arg: { kind: 'invalid', says: 'an array was passed where it is not accepted', fix: args },
  invalid_charset: { kind: 'invalid', says: 'the request charset is not accepted', fix: args },
  invalid_cursor: { kind: 'invalid', says: 'the pagination cursor is not valid', fix: args },
  invalid_limit: { kind: 'invalid', says: 'the limit is out of range', fix: args },
  invalid_types: { kind: 'invalid', says: 'a conversation type is not valid', fix: args },
  invalid_ts_latest: { kind: 'invalid', says: 'latest is not a valid timestamp', fix: args },
  invalid_ts_oldest: { kind: 'invalid', says: 'oldest is not a valid timestamp', fix: args },
  invalid_blocks: { kind: 'invalid', says: 'the blocks are not valid', fix: args },
  msg_too_long: { kind: 'invalid', says: 'the message text is too long', fix: () => 'Shorten the message.' },
  no_text: { kind: 'invalid', says: 'no message text was given', fix: args },
  too_many_attachments: { kind: 'invalid', says: 'too many attachments', fix: args },
  method_not_supported_for_channel_type: { kind: 'invalid', says: 'this method does not apply to that kind of conversation', fix: args },
  // The request's own form: the connector's to fix, not the agent's arguments.
  invalid_form_data: { kind: 'protocol', says: 'the request body is not valid form data', fix: () => bug },
  invalid_json: { kind: 'protocol', says: 'the JSON body is not valid', fix: () => bug },
  json_not_object: { kind: 'protocol', says: 'the JSON body is not an object', fix: () => bug },
  invalid_post_type: { kind: 'protocol', says: 'the request content type is not accepted', fix: () => bug },
  missing_post_type: { kind: 'protocol', says: 'the request has no content type', fix: () => bug },
  // Retired.
  upgrade_required: { kind: 'gone', says: 'Slack requires a newer client for this method', fix: () => 'Update Gatehouse.' },
  method_deprecated: { kind: 'gone', says: 'Slack retired this method', fix: () => 'Update Gatehouse; this connector version calls a retired method.' },
  deprecated_endpoint: { kind: 'gone', says: 'Slack retired this endpoint', fix: () => 'Update Gatehouse; this connector version calls a retired endpoint.' },
  // Slack's side.
  fatal_error: { kind: 'unavailable', says: 'Slack failed with a catastrophic error (part of the operation may have happened)', fix: () => 'Check before retrying a post; then try again later.' },
  internal_error: { kind: 'unavailable', says: 'Slack failed, likely a transient issue (part of the operation may have happened)', fix: later },
  service_unavailable: { kind: 'unavailable', says: 'the service is temporarily unavailable', fix: later },
  request_timeout: { kind: 'unavailable', says: 'the request body arrived missing or truncated', fix: later },
  team_added_to_org: { kind: 'unavailable', says: 'the workspace is migrating to an Enterprise organization', fix: later },
  org_login_required: { kind: 'unavailable', says: 'the workspace is migrating to an Enterprise organization', fix: later },
};

/** The codes this module maps (for tests: every one has a kind and a fix). */
export const SLACK_ERROR_CODES: readonly string[] = Object.keys(CODES);

const LEAD: Partial<Record<FailureKind, string>> = {
  auth: "Slack rejected the connector's token",
  forbidden: 'Slack refused this request',
  not_found: 'Slack found nothing there',
  invalid: 'Slack rejected the request as invalid',
  gone: 'Slack says this is gone',
  unavailable: 'Slack is unavailable',
  protocol: 'Slack could not read the request',
};

// Scope names are short lowercase words with ':' and '.' (e.g. channels:history); anything else is not echoed as a scope.
const SCOPES = /^[a-z][a-z0-9:._-]{0,60}(?:,[a-z][a-z0-9:._-]{0,60}){0,9}$/;

/** Maps a Slack `{"ok": false, "error": ...}` body (HTTP 200) to a ProviderError. */
export function slackFailure(res: ResponseFacts, ctx: ErrorContext): ProviderError {
  const now = ctx.now ?? Date.now();
  const b = (res.body ?? {}) as Record<string, unknown>;
  const code = typeof b.error === 'string' ? b.error : 'unknown_error';
  const detail = sanitize(providerDetail('Slack', b), ctx.scrub);
  // https://docs.slack.dev/apis/web-api/rate-limits: HTTP 429 with Retry-After; "ratelimited" in the body.
  if (code === 'ratelimited' || code === 'rate_limited' || code === 'message_limit_exceeded' || res.status === 429) {
    const ms = retryAfterMs(res.headers, now) ?? 60_000;
    return new ProviderError('rate_limited', `Slack rate limit reached (${detail}). Retry in ${whenText(ms, now)}; until then this connector does not call this Slack method.`, { status: res.status, retryAfterMs: ms });
  }
  const known = Object.hasOwn(CODES, code) ? CODES[code] : undefined;
  if (known === undefined) return new ProviderError('protocol', `Slack answered with an error this connector does not know (${detail}).`, { status: res.status });
  const needed = typeof b.needed === 'string' && SCOPES.test(b.needed) ? b.needed : undefined;
  return new ProviderError(known.kind, `${LEAD[known.kind] ?? 'Slack refused'} (${detail}): ${known.says}. ${known.fix(ctx, needed)}`, { status: res.status });
}

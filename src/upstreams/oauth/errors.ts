/**
 * oauth4webapi's errors as GatehouseErrors with messages that say what was
 * refused. What a server wrote (error_description) is its text: cut short
 * and stripped of control characters before it goes into a message.
 */
import { AuthorizationResponseError, OperationProcessingError, ResponseBodyError, UnsupportedOperationError } from 'oauth4webapi';
import { GatehouseError, errorMessage } from '../../errors.js';

/** A server's words, safe to quote: printable, at most 200 characters. */
export function quoted(text: unknown): string {
  return String(text ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').slice(0, 200);
}

/** The OAuth error code of a token endpoint or authorization response error, if that is what `e` is. */
export function oauthErrorCode(e: unknown): string | undefined {
  if (e instanceof ResponseBodyError || e instanceof AuthorizationResponseError) return e.error;
  return undefined;
}

/** Any failure of an OAuth exchange as a GatehouseError; `what` names the exchange ("the token endpoint"). */
export function oauthError(connector: string, e: unknown, what: string): GatehouseError {
  if (e instanceof GatehouseError) return e;
  const head = `connector "${connector}": ${what}`;
  if (e instanceof ResponseBodyError || e instanceof AuthorizationResponseError) {
    const desc = e.error_description !== undefined ? ` (${quoted(e.error_description)})` : '';
    return new GatehouseError('OAUTH_REFUSED', `${head} answered ${quoted(e.error)}${desc}`, { details: { oauthError: quoted(e.error) } });
  }
  // No cause kept: oauth4webapi's errors carry the answer's body (an access or refresh token) as theirs.
  if (e instanceof OperationProcessingError || e instanceof UnsupportedOperationError) {
    return new GatehouseError('OAUTH_REFUSED', `${head}: ${quoted(e.message)}${e.code ? ` [${e.code}]` : ''}; refused`);
  }
  return new GatehouseError('OAUTH_REFUSED', `${head} failed: ${quoted(errorMessage(e))}`, { cause: e });
}

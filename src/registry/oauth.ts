/**
 * `oauth:` on an `http` connector: the remote MCP server authorises with
 * OAuth 2.1 (MCP authorization spec 2025-11-25), and the gateway holds the
 * login in the OS keychain (src/secrets/oauth/, src/upstreams/oauth/).
 * Every field is optional: `oauth: {}` discovers everything from the server.
 */
import { z } from 'zod';
import { credential, plain, serviceUrl } from './fields.js';

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,200}$/;

/** An origin (scheme://host[:port]) that metadata may point at besides the server's own. */
const origin = serviceUrl('oauth.allowOrigins').refine((v) => new URL(v).origin === v.replace(/\/$/, ''), 'oauth.allowOrigins: an origin only (https://host[:port]), no path');

export const OAuthSchema = z
  .strictObject({
    /** A client registered beforehand with the authorization server (RFC 6749 §2). Without it: a client ID metadata document, else dynamic registration (RFC 7591). */
    clientId: plain('oauth.clientId').pipe(z.string().min(1).max(2048)).optional(),
    /** That client's secret (a confidential client), from the keychain. */
    clientSecret: credential('NAME-oauth-client-secret').optional(),
    /** An https URL where you host a client ID metadata document; used as client_id where the server supports it (client_id_metadata_document_supported). */
    clientMetadataUrl: serviceUrl('oauth.clientMetadataUrl').optional(),
    /** Scopes to ask for; default: the server's WWW-Authenticate `scope`, else its resource metadata's scopes_supported. */
    scopes: z.array(z.string().regex(SCOPE_TOKEN, 'a scope token (RFC 6749 §3.3): printable ASCII without space, " or \\')).optional(),
    /** The authorization server (issuer) you expect; metadata naming another one is refused. Also used when the server publishes no resource metadata. */
    authorizationServer: serviceUrl('oauth.authorizationServer').optional(),
    /** The protected resource metadata URL (RFC 9728), when the server's 401 does not name it. */
    resourceMetadata: serviceUrl('oauth.resourceMetadata').optional(),
    /** Origins metadata may point at besides the MCP server's own and the authorization server's: anything else is refused. */
    allowOrigins: z.array(origin).default([]),
    /** One login for the connector, or one per agent (`gatehouse connector login NAME --for AGENT`): each agent acts upstream as itself. */
    per: z.enum(['connector', 'agent'], { error: 'oauth.per: connector or agent' }).default('connector'),
    /** A fixed port for the loopback redirect (http://127.0.0.1:PORT/callback), for a server that matches redirect URIs exactly; default: a random port (RFC 8252 §7.3). */
    redirectPort: z.number().int().min(1024).max(65535).optional(),
    /** How `connector login` signs in: a browser with a loopback redirect, the device flow (RFC 8628), or auto (a browser when one can be opened). */
    flow: z.enum(['auto', 'browser', 'device'], { error: 'oauth.flow: auto, browser or device' }).default('auto'),
  })
  .refine((o) => o.clientSecret === undefined || o.clientId !== undefined, { message: 'oauth.clientSecret needs oauth.clientId (the client it belongs to)', path: ['clientSecret'] });

export type OAuthConfig = z.output<typeof OAuthSchema>;

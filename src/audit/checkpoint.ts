import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CompactSign, calculateJwkThumbprint, compactVerify, type JWK } from 'jose';
import { GatehouseError } from '../errors.js';

export const CHECKPOINT_ALG = 'EdDSA';
export const CHECKPOINT_TYP = 'gatehouse-audit-checkpoint+jws';

/** What a checkpoint signs: the seq and hash of a record, and when it was signed. */
export interface CheckpointPayload {
  seq: number;
  hash: string;
  time: string;
}

export interface CheckpointKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
}

export function checkpointKeyPath(stateDir: string): string {
  return join(stateDir, 'keys', 'audit-checkpoint.jwk');
}

async function fromPrivateJwk(jwk: JWK, file: string): Promise<CheckpointKey> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') {
    throw new GatehouseError('CONFIG_INVALID', `${file} is not an Ed25519 private JWK`);
  }
  const privateKey = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  const publicJwk: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg: CHECKPOINT_ALG, use: 'sig' } };
}

/** Loads the checkpoint signing key (a private JWK, 0600), creating it on first use. */
export async function loadCheckpointKey(file: string): Promise<CheckpointKey> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new GatehouseError('CONFIG_INVALID', `cannot read the audit checkpoint key ${file}: ${(e as Error).message}`);
    const { privateKey } = generateKeyPairSync('ed25519');
    const jwk = privateKey.export({ format: 'jwk' }) as JWK;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    chmodSync(dirname(file), 0o700);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(jwk) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
    text = readFileSync(file, 'utf8');
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw new GatehouseError('CONFIG_INVALID', `${file} is not valid JSON`);
  }
  return fromPrivateJwk(jwk, file);
}

/** Reads a public key for verification: a JWK (public or private; only the public part is used). */
export async function loadPublicJwk(file: string): Promise<{ key: KeyObject; kid: string }> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
  } catch (e) {
    throw new GatehouseError('USAGE', `cannot read the public key ${file}: ${(e as Error).message}`);
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new GatehouseError('USAGE', `${file} is not an Ed25519 JWK`);
  const pub: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
  return { key: createPublicKey({ key: pub as import('node:crypto').JsonWebKey, format: 'jwk' }), kid: await calculateJwkThumbprint(pub) };
}

export async function signCheckpoint(key: CheckpointKey, payload: CheckpointPayload): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify({ seq: payload.seq, hash: payload.hash, time: payload.time })))
    .setProtectedHeader({ alg: CHECKPOINT_ALG, kid: key.kid, typ: CHECKPOINT_TYP })
    .sign(key.privateKey);
}

/** Verifies a checkpoint JWS; returns its payload or a reason. */
export async function verifyCheckpoint(jws: string, publicKey: KeyObject): Promise<{ ok: true; payload: CheckpointPayload } | { ok: false; message: string }> {
  try {
    const { payload, protectedHeader } = await compactVerify(jws, publicKey, { algorithms: [CHECKPOINT_ALG] });
    if (protectedHeader.typ !== CHECKPOINT_TYP) return { ok: false, message: `unexpected JWS typ ${JSON.stringify(protectedHeader.typ)}` };
    const p = JSON.parse(new TextDecoder().decode(payload)) as Partial<CheckpointPayload>;
    if (!Number.isSafeInteger(p.seq) || typeof p.hash !== 'string' || typeof p.time !== 'string') return { ok: false, message: 'checkpoint payload is malformed' };
    return { ok: true, payload: p as CheckpointPayload };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return { ok: false, message: code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'checkpoint signature is not valid for this key' : `checkpoint JWS is invalid (${(e as Error).message})` };
  }
}

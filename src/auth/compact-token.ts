/**
 * Shape checks on a compact JWS before any key is looked up: three canonical base64url parts, a
 * JSON object header and payload without duplicate names, an allowed algorithm, and none of the
 * header parameters that would let the token choose its own key or change how it is parsed.
 * Nothing here is verified yet: the payload is read only to pick which trusted issuer's keys to
 * verify against (token-verifier.ts), never to decide anything else.
 */
import { AuthenticationError } from './errors';
import { hasDuplicateMemberNames } from './json-duplicate-keys';
import { MAX_BEARER_TOKEN_LENGTH } from './bearer-header';
import { needs } from '../crypto/needs';

/** Asymmetric only (RFC 8725 3.1, 3.2): no `none`, no HMAC that a public key could be fed into. */
export const ALLOWED_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type AllowedAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];

/**
 * Header parameters refused outright. jwk/jku/x5u/x5c would have the token name its own key (we
 * only ever use the configured key set, and a token that tries otherwise is hostile, RFC 8725 3.10);
 * b64 changes how the payload is read (RFC 7797; JWTs must not use it, RFC 7797 section 7).
 */
const FORBIDDEN_HEADER_PARAMETERS = ['jwk', 'jku', 'x5u', 'x5c', 'b64'] as const;

const BASE64URL_PART = /^[A-Za-z0-9_-]+$/;
const MAX_KEY_ID_LENGTH = 256;

export interface UnverifiedToken {
  readonly header: Readonly<Record<string, unknown>>;
  /** Not yet verified: use only to choose the issuer whose keys must then verify the whole token. */
  readonly unverifiedClaims: Readonly<Record<string, unknown>>;
}

export function inspectCompactToken(token: string): UnverifiedToken {
  needs(token.length > 0, () => new AuthenticationError('missing_token'));
  needs(token.length <= MAX_BEARER_TOKEN_LENGTH, () => new AuthenticationError('malformed', 'token too long'));
  const parts = token.split('.');
  // Five parts is a JWE, two or "h.p." a token with its signature stripped: only signed JWTs pass.
  needs(
    parts.length === 3,
    () => new AuthenticationError('malformed', `token has ${parts.length} parts, a compact JWS has 3`),
  );
  const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];

  const header = decodeJsonObject(encodedHeader, 'header');
  // Checked here as well as by jose so that an unlisted algorithm never even reaches key lookup.
  needs(
    ALLOWED_ALGORITHMS.includes(header.alg as AllowedAlgorithm),
    () => new AuthenticationError('algorithm_not_allowed'),
  );
  for (const name of FORBIDDEN_HEADER_PARAMETERS) {
    needs(!Object.hasOwn(header, name), () => new AuthenticationError('forbidden_header', `header carries "${name}"`));
  }
  // We implement no JWS extension, so any `crit` names one we do not understand (RFC 7515 4.1.11: reject).
  needs(!Object.hasOwn(header, 'crit'), () => new AuthenticationError('unsupported_critical_header'));
  // kid is only a lookup key into the configured key set; a non-string kid would make jose ignore it.
  needs(
    header.kid === undefined || (typeof header.kid === 'string' && header.kid.length <= MAX_KEY_ID_LENGTH),
    () => new AuthenticationError('malformed', 'kid is not a short string'),
  );
  needs(
    header.typ === undefined || typeof header.typ === 'string',
    () => new AuthenticationError('malformed', 'typ is not a string'),
  );

  const unverifiedClaims = decodeJsonObject(encodedPayload, 'payload');
  needs(encodedSignature !== '', () => new AuthenticationError('malformed', 'signature part is empty'));
  decodeBase64UrlPart(encodedSignature, 'signature');
  return { header, unverifiedClaims };
}

function decodeJsonObject(encodedPart: string, partName: string): Record<string, unknown> {
  const text = decodeUtf8(decodeBase64UrlPart(encodedPart, partName), partName);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AuthenticationError('malformed', `${partName} is not JSON`);
  }
  needs(
    typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed),
    () => new AuthenticationError('malformed', `${partName} is not a JSON object`),
  );
  needs(
    !hasDuplicateMemberNames(text),
    () => new AuthenticationError('malformed', `${partName} repeats a member name`),
  );
  return parsed as Record<string, unknown>;
}

/** Strict base64url (RFC 7515 section 2): no padding, no '+' '/', and canonical trailing bits. */
function decodeBase64UrlPart(encodedPart: string, partName: string): Buffer {
  needs(BASE64URL_PART.test(encodedPart), () => new AuthenticationError('malformed', `${partName} is not base64url`));
  const bytes = Buffer.from(encodedPart, 'base64url');
  // Node's decoder ignores stray trailing bits; re-encoding must give the same text, so one token has one spelling.
  needs(
    bytes.toString('base64url') === encodedPart,
    () => new AuthenticationError('malformed', `${partName} is not canonical base64url`),
  );
  return bytes;
}

function decodeUtf8(bytes: Buffer, partName: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AuthenticationError('malformed', `${partName} is not UTF-8`);
  }
}

/**
 * Verifying signed tokens with jose: HS256 bearer tokens signed with the `JWT_SECRET`, and
 * Cloudflare Access tokens (RS256, keys from the team's JWKS). The algorithm is always given
 * explicitly (jose would otherwise accept any algorithm the key fits; `none` never passes), and
 * issuer and audience are checked whenever they are configured.
 * @module
 */
import { errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { ApiError } from "./errors.ts";
import {
  accessClaims,
  accessPrincipalId,
  jwtClaims,
  jwtPrincipalId,
  role as roleSchema,
  tokenLifetimeProblem,
  type Principal,
  type ProvenCaller,
  type Role,
} from "./auth.ts";

/** Seconds of clock skew tolerated on `exp`, `nbf` and `iat`. */
export const CLOCK_TOLERANCE_S = 30;

/**
 * Why a token was refused; the edge answers 401 with it. `caller` is set when the signature
 * verified, so the refusal can be audited under the token's subject.
 */
export class TokenRejected extends Error {
  override name = "TokenRejected";
  readonly caller: ProvenCaller | null;
  constructor(message: string, caller: ProvenCaller | null = null) {
    super(message);
    this.caller = caller;
  }
}

function reason(err: unknown): string {
  if (err instanceof TokenRejected) return err.message;
  if (err instanceof errors.JWTExpired) return "the token has expired";
  if (err instanceof errors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not accepted`;
  if (err instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (err instanceof errors.JWKSNoMatchingKey) return "the token is not signed by a known key";
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return "the token is malformed";
  return "the token could not be verified";
}

/** Who signed claims name, for claims whose signature verified. */
type CallerOf = (claims: unknown) => ProvenCaller | null;

async function verified<T>(fn: () => Promise<T>, callerOf: CallerOf): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // The Access key set could not be fetched: not the caller's fault, and not a 500 either.
    if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) throw new ApiError(503, "unavailable", "the Access signing keys could not be fetched; try again");
    if (err instanceof TokenRejected) throw err;
    // jwtVerify checks the claims only once the signature has verified.
    const claimsRefused = err instanceof errors.JWTExpired || err instanceof errors.JWTClaimValidationFailed;
    if (err instanceof errors.JOSEError) throw new TokenRejected(reason(err), claimsRefused ? callerOf(err.payload) : null);
    throw err;
  }
}

/** The lifetime check after jose's (`exp` bounded, `iat` not in the future), or `TokenRejected`. */
function checkLifetime(claims: { exp?: unknown; iat?: unknown }, caller: ProvenCaller | null): void {
  const problem = tokenLifetimeProblem(claims, Math.floor(Date.now() / 1000), CLOCK_TOLERANCE_S);
  if (problem) throw new TokenRejected(problem, caller);
}

export interface JwtConfig {
  secret: string;
  issuer?: string;
  audience?: string;
}

const bearerCaller: CallerOf = (claims) => {
  const sub = jwtClaims.shape.sub.safeParse((claims as { sub?: unknown } | null)?.sub);
  return sub.success ? { kind: "jwt", id: jwtPrincipalId(sub.data) } : null;
};

/** An HS256 bearer token → principal, or `TokenRejected`. */
export function verifyBearerJwt(token: string, config: JwtConfig): Promise<Principal> {
  return verified(async () => {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(config.secret), {
      algorithms: ["HS256"],
      requiredClaims: ["exp", "sub"],
      clockTolerance: CLOCK_TOLERANCE_S,
      ...(config.issuer ? { issuer: config.issuer } : {}),
      ...(config.audience ? { audience: config.audience } : {}),
    });
    checkLifetime(payload, bearerCaller(payload));
    const claims = jwtClaims.safeParse(payload);
    if (!claims.success) {
      const problems = claims.error.issues.map((i) => `${i.path.join(".") || "claims"}: ${i.message}`).join("; ");
      throw new TokenRejected(`the token's claims are not valid: ${problems}`, bearerCaller(payload));
    }
    const principal: Principal = { kind: "jwt", id: jwtPrincipalId(claims.data.sub), role: claims.data.role };
    if (claims.data.ns) principal.namespaces = claims.data.ns;
    return principal;
  }, bearerCaller);
}

export interface AccessConfig {
  /** `https://<team>.cloudflareaccess.com` */
  issuer: string;
  /** The Access application's audience tag. */
  audience: string;
  keys: JWTVerifyGetKey;
  /** Role every Access-authenticated user gets (the Access policy decides who gets in at all). */
  role: Role;
}

/** The issuer of a team's Access tokens from `ACCESS_TEAM_DOMAIN` (`team`, `team.cloudflareaccess.com` or a URL). */
export function accessIssuer(teamDomain: string): string {
  let host = teamDomain.trim().replace(/^https?:\/\//, "").replace(/\/+$/, "");
  if (!host.includes(".")) host = `${host}.cloudflareaccess.com`;
  return `https://${host}`;
}

export function accessRole(value: string | undefined): Role {
  const parsed = roleSchema.safeParse(value ?? "");
  return parsed.success ? parsed.data : "write";
}

const accessCaller: CallerOf = (claims) => {
  const parsed = accessClaims.safeParse(claims);
  const id = parsed.success ? accessPrincipalId(parsed.data) : null;
  return id ? { kind: "access", id } : null;
};

/** A `Cf-Access-Jwt-Assertion` token → principal, or `TokenRejected`. */
export function verifyAccessJwt(token: string, config: AccessConfig): Promise<Principal> {
  return verified(async () => {
    const { payload } = await jwtVerify(token, config.keys, {
      algorithms: ["RS256"],
      issuer: config.issuer,
      audience: config.audience,
      requiredClaims: ["exp"],
      clockTolerance: CLOCK_TOLERANCE_S,
    });
    const caller = accessCaller(payload);
    if (!caller) throw new TokenRejected("the Access token names no user (email, common_name or sub)");
    checkLifetime(payload, caller);
    return { ...caller, role: config.role };
  }, accessCaller);
}

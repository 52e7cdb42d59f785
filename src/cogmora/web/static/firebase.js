// Firebase Auth without the SDK (no CDN, no build step): the two REST calls a web sign-in
// needs. Identity Toolkit's `accounts:signInWithPassword` turns email and password into an
// ID token (valid one hour) and a refresh token; Secure Token's `token` endpoint trades the
// refresh token for a fresh ID token. The server says where both live (GET /v1/auth/config):
// Google's hosts, or the Auth emulator's when FIREBASE_AUTH_EMULATOR_HOST is set.

// Identity Toolkit's error codes, as a person would say them.
const MESSAGES = {
  EMAIL_NOT_FOUND: "no account with this email",
  INVALID_PASSWORD: "wrong password",
  INVALID_LOGIN_CREDENTIALS: "wrong email or password",
  USER_DISABLED: "this account is disabled",
  INVALID_EMAIL: "not a valid email address",
  MISSING_PASSWORD: "enter the password",
  TOO_MANY_ATTEMPTS_TRY_LATER: "too many attempts: try again later",
  TOKEN_EXPIRED: "the sign-in has expired: sign in again",
  INVALID_REFRESH_TOKEN: "the sign-in has expired: sign in again",
  USER_NOT_FOUND: "the account no longer exists",
  UNREACHABLE: "cannot reach Firebase Auth",
};

export class FirebaseError extends Error {
  constructor(code) {
    const key = String(code || "").split(" ")[0].split(":")[0].trim();
    super(MESSAGES[key] || `Firebase sign-in failed: ${code || "no answer"}`);
    this.code = key;
  }
}

async function post(url, body, form = false) {
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": form ? "application/x-www-form-urlencoded" : "application/json" },
      body: form ? new URLSearchParams(body).toString() : JSON.stringify(body),
    });
  } catch {
    throw new FirebaseError("UNREACHABLE");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new FirebaseError(data.error?.message);
  return data;
}

// Refresh a few minutes early: a request sent with a token about to expire may arrive late.
const EARLY_MS = 5 * 60 * 1000;

/** A signed-in Firebase user: {idToken, refreshToken, expiresAt (ms), uid, email}. */
export async function signInWithPassword(config, email, password) {
  const data = await post(
    `${config.identityToolkit}/accounts:signInWithPassword?key=${encodeURIComponent(config.apiKey)}`,
    { email, password, returnSecureToken: true },
  );
  return {
    idToken: data.idToken, refreshToken: data.refreshToken, uid: data.localId, email: data.email,
    expiresAt: Date.now() + Number(data.expiresIn || 3600) * 1000,
  };
}

export async function refresh(config, user) {
  const data = await post(
    `${config.secureToken}/token?key=${encodeURIComponent(config.apiKey)}`,
    { grant_type: "refresh_token", refresh_token: user.refreshToken },
    true,
  );
  return {
    ...user, idToken: data.id_token, refreshToken: data.refresh_token,
    expiresAt: Date.now() + Number(data.expires_in || 3600) * 1000,
  };
}

export const stale = (user, now = Date.now()) => now >= user.expiresAt - EARLY_MS;

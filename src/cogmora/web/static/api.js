// The one way the page talks to the server: the public API with the user's bearer token,
// either one of ours (`cogmora users create`) or a Firebase ID token, refreshed before it
// expires (and once more on a 401, in case the clock or the server disagreed).

import { refresh, stale } from "./firebase.js";

export const session = {
  token: null, // what is sent as the bearer; null when signed out
  firebase: null, // {config, user} when signed in with Firebase
  onUnauthorized: () => {},
  onRefreshed: () => {},
  refreshing: null,
  async bearer(force = false) {
    if (this.firebase && (force || stale(this.firebase.user))) {
      if (!this.refreshing) {
        const fb = this.firebase;
        this.refreshing = refresh(fb.config, fb.user).then((user) => {
          if (this.firebase === fb) {
            fb.user = user;
            this.token = user.idToken;
            this.onRefreshed(fb);
          }
        }).catch((err) => {
          // A refresh token that is no longer good ends the session; a network error does not.
          if (err.code && err.code !== "UNREACHABLE" && this.firebase === fb) this.onUnauthorized(`session ended: ${err.message}`);
          throw err;
        }).finally(() => { this.refreshing = null; });
      }
      await this.refreshing;
    }
    return this.token;
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.field = body.field || null;
  }
}

async function send(method, path, body) {
  const headers = { Authorization: `Bearer ${await session.bearer()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
  const go = () => fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let res = await go();
  if (res.status === 401 && session.firebase) {
    // The same Idempotency-Key: a retry of one request, never a second order.
    try { headers.Authorization = `Bearer ${await session.bearer(true)}`; res = await go(); } catch { /* 401 stands */ }
  }
  if (res.status === 401 && path !== "/v1/account") session.onUnauthorized("session ended: invalid token");
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
  return res;
}

export async function api(method, path, body) {
  const res = await send(method, path, body);
  return res.json().catch(() => ({}));
}

/** The answer as text (the ledger's CSV), with the same errors as api(). */
export async function apiText(method, path) {
  return (await send(method, path)).text();
}

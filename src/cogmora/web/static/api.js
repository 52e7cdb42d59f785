// The one way the page talks to the server: the public API with the user's bearer token.

export const session = { token: null, onUnauthorized: () => {} };

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.field = body.field || null;
  }
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 && path !== "/v1/account") session.onUnauthorized("session ended: invalid token");
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

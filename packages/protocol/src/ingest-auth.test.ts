import { describe, expect, it } from "vitest";
import { extractIngestAuth, isPublicKey } from "./ingest-auth.ts";

const auth = (headers: Record<string, string>, query = "") =>
  extractIngestAuth({ header: (name) => headers[name], query: new URLSearchParams(query) });

describe("extractIngestAuth", () => {
  it("reads X-Sentry-Auth, Authorization: Sentry, Basic and the query string", () => {
    const expected = {
      ok: true,
      auth: { publicKey: "abc", version: 7, client: "sentry.python/2.0" },
    };
    expect(
      auth({
        "x-sentry-auth": "Sentry sentry_key=abc, sentry_version=7, sentry_client=sentry.python/2.0",
      }),
    ).toEqual(expected);
    expect(
      auth({
        authorization: "sentry sentry_key=abc,sentry_version=7,sentry_client=sentry.python/2.0",
      }),
    ).toEqual(expected);
    expect(auth({}, "sentry_key=abc&sentry_version=7&sentry_client=sentry.python%2F2.0")).toEqual(
      expected,
    );
    expect(
      auth({
        authorization: `Basic ${Buffer.from("abc:").toString("base64")}`,
        "user-agent": "ua/1",
      }),
    ).toEqual({
      ok: true,
      auth: { publicKey: "abc", version: 7, client: "ua/1" },
    });
  });

  it("drops key flags and defaults the version to 7", () => {
    expect(auth({}, "sentry_key=abc.no-cache")).toMatchObject({
      ok: true,
      auth: { publicKey: "abc", version: 7 },
    });
  });

  it("says nothing was found, so the envelope dsn header may be used", () => {
    expect(auth({})).toEqual({ ok: false, status: null });
    expect(auth({ authorization: "Bearer token" })).toEqual({ ok: false, status: null });
  });

  it("refuses two sources, a missing key and newer protocol versions", () => {
    expect(auth({ "x-sentry-auth": "Sentry sentry_key=a" }, "sentry_key=b")).toMatchObject({
      status: 401,
    });
    expect(auth({}, "sentry_version=7")).toMatchObject({
      status: 401,
      detail: "missing sentry_key",
    });
    expect(auth({}, "sentry_key=a&sentry_version=8")).toMatchObject({ status: 400 });
  });
});

describe("isPublicKey", () => {
  it("accepts 32 hex characters only, as Sentry's keys are", () => {
    expect(isPublicKey("0123456789abcdef0123456789ABCDEF")).toBe(true);
    expect(isPublicKey("0123456789abcdef0123456789abcde")).toBe(false);
    expect(isPublicKey("0123456789abcdef0123456789abcdeg")).toBe(false);
    expect(isPublicKey("a".repeat(1024 * 1024))).toBe(false);
    expect(isPublicKey("")).toBe(false);
  });
});

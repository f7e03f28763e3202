import { describe, expect, it } from "vitest";
import { judgeKey, keyOfEnvelopeDsn } from "./authenticate-key.ts";

const key = { keyId: 3, projectId: 7, isActive: true, rateLimit: null };

describe("judgeKey", () => {
  it("accepts an active key of the path's project, or of any project without one", () => {
    expect(judgeKey({ key, result: "hit" }, 7)).toEqual({ ok: true, key });
    expect(judgeKey({ key, result: "miss" }, null)).toEqual({ ok: true, key });
  });

  it("answers 401 for a string that is not a key and for an unknown key", () => {
    expect(judgeKey({ key: null, result: "invalid" }, 7)).toEqual({
      ok: false,
      status: 401,
      detail: "invalid DSN key",
    });
    expect(judgeKey({ key: null, result: "miss" }, 7)).toEqual({
      ok: false,
      status: 401,
      detail: "unknown DSN key",
    });
  });

  it("answers 403 for a disabled key and for another project's key", () => {
    expect(judgeKey({ key: { ...key, isActive: false }, result: "hit" }, 7)).toEqual({
      ok: false,
      status: 403,
      detail: "DSN key is disabled",
    });
    expect(judgeKey({ key, result: "hit" }, 8)).toEqual({
      ok: false,
      status: 403,
      detail: "DSN key does not belong to project 8",
    });
  });
});

describe("keyOfEnvelopeDsn", () => {
  const publicKey = "0123456789abcdef0123456789abcdef";

  it("takes the public key of a DSN", () => {
    const named = keyOfEnvelopeDsn(`https://${publicKey}@sluice.example/7`);
    expect(named).toMatchObject({ ok: true, auth: { publicKey } });
  });

  it("answers 401 missing without a dsn, and 401 invalid for one that is not a DSN", () => {
    const missing = { ok: false, status: 401, detail: "missing authorization information" };
    const invalid = { ok: false, status: 401, detail: "invalid dsn in envelope header" };
    expect(keyOfEnvelopeDsn(undefined)).toEqual(missing);
    expect(keyOfEnvelopeDsn("")).toEqual(missing);
    expect(keyOfEnvelopeDsn("not a dsn")).toEqual(invalid);
    expect(keyOfEnvelopeDsn(42)).toEqual(invalid);
  });
});

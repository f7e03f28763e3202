import { DrizzleQueryError } from "drizzle-orm/errors";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { apiErrorResponse } from "./api-error.ts";

function appThrowing(error: unknown, logged: unknown[]) {
  const app = new Hono();
  app.onError((e, c) => apiErrorResponse(c, e, (x) => logged.push(x)));
  app.get("/", () => {
    throw error;
  });
  return app;
}

const pgError = (code: string) =>
  Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), {
    code,
    routine: "report_invalid_encoding",
  });

describe("apiErrorResponse", () => {
  it("answers a Postgres data exception 400, without the statement or its parameters", async () => {
    const logged: unknown[] = [];
    const error = new DrizzleQueryError("select $1", ["secret\u0000"], pgError("22021"));
    const response = await appThrowing(error, logged).request("/");
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ detail: "invalid input (SQLSTATE 22021)" });
    expect(logged).toEqual([]);
  });

  it("logs other database errors by SQLSTATE only, and answers 500", async () => {
    const logged: unknown[] = [];
    const error = new DrizzleQueryError(
      "select secret from t where x = $1",
      ["pii"],
      pgError("53300"),
    );
    const response = await appThrowing(error, logged).request("/");
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ detail: "internal error" });
    expect(logged).toHaveLength(1);
    expect(JSON.stringify(logged[0])).not.toMatch(/select|pii/);
    expect(logged[0]).toMatchObject({ sqlstate: "53300" });
  });

  it("answers a validation failure that escaped a route 400 with the field", async () => {
    const parsed = z.object({ version: z.string() }).safeParse({ version: 1 });
    const response = await appThrowing(parsed.error, []).request("/");
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toMatch(/^version: /);
  });
});

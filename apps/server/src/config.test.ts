import { describe, expect, it } from "vitest";
import { readConfig } from "./config.ts";

describe("readConfig", () => {
  it("runs with no configuration at all", () => {
    const result = readConfig({});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      databaseUrl: null,
      redisUrl: null,
      port: 8000,
      publicUrl: "http://localhost:8000",
    });
  });

  it("reports every problem at once", () => {
    const result = readConfig({
      DATABASE_URL: "mysql://x",
      PORT: "-1",
      SLUICE_DB_POOL_SIZE: "many",
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.split(":")[0])).toEqual([
      "DATABASE_URL",
      "PORT",
      "SLUICE_DB_POOL_SIZE",
    ]);
  });
});

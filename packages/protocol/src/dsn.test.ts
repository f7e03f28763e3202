import { describe, expect, it } from "vitest";
import { parseDsn } from "./dsn.ts";

describe("parseDsn", () => {
  it("reads the key, project and host", () => {
    expect(parseDsn("https://0123abcd@o1.example.com/42")).toEqual({
      publicKey: "0123abcd",
      projectId: "42",
      host: "o1.example.com",
    });
  });

  it("answers null, never throws, for what is not a DSN", () => {
    expect(parseDsn("http://%E0%A4%A@x/1")).toBeNull();
    expect(parseDsn("not a url")).toBeNull();
    expect(parseDsn("http://x/1")).toBeNull();
    expect(parseDsn("http://key@x/")).toBeNull();
  });
});

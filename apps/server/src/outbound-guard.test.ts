import { request } from "node:http";
import { describe, expect, it } from "vitest";
import {
  destinationProblem,
  guardedLookup,
  nonPublicRange,
  RefusedDestinationError,
} from "./outbound-guard.ts";

describe("the outbound guard", () => {
  it("classes loopback, private, link-local and unspecified addresses as not public", () => {
    expect(nonPublicRange("127.0.0.1")).toBe("loopback");
    expect(nonPublicRange("10.2.3.4")).toBe("private");
    expect(nonPublicRange("172.16.0.1")).toBe("private");
    expect(nonPublicRange("192.168.1.1")).toBe("private");
    expect(nonPublicRange("169.254.169.254")).toBe("linkLocal");
    expect(nonPublicRange("0.0.0.0")).toBe("unspecified");
    expect(nonPublicRange("::1")).toBe("loopback");
    expect(nonPublicRange("::")).toBe("unspecified");
    expect(nonPublicRange("fe80::1")).toBe("linkLocal");
    expect(nonPublicRange("fd12:3456::1")).toBe("uniqueLocal");
    // An IPv4-mapped IPv6 address is its IPv4 address.
    expect(nonPublicRange("::ffff:127.0.0.1")).toBe("loopback");
    expect(nonPublicRange("8.8.8.8")).toBeNull();
    expect(nonPublicRange("2606:4700:4700::1111")).toBeNull();
  });

  it("refuses such URLs when saved, by address and by the addresses a name resolves to", async () => {
    const resolvesTo = (addresses: string[]) => async () => addresses;
    expect(await destinationProblem("http://127.0.0.1:8080/hook", false)).toMatch(/loopback/);
    expect(await destinationProblem("http://169.254.169.254/latest/meta-data/", false)).toMatch(
      /linkLocal/,
    );
    expect(await destinationProblem("http://[::1]/hook", false)).toMatch(/loopback/);
    // WHATWG URLs normalize other spellings of an IPv4 address.
    expect(await destinationProblem("http://2130706433/", false)).toMatch(/loopback/);
    expect(await destinationProblem("ftp://example.com/", false)).toMatch(/http/);
    expect(await destinationProblem("http://localhost:9/", false)).toMatch(/localhost .*loopback/);
    expect(
      await destinationProblem(
        "https://hooks.example/",
        false,
        resolvesTo(["93.184.215.14", "10.0.0.5"]),
      ),
    ).toMatch(/hooks\.example \(10\.0\.0\.5\) is a private address/);
    expect(
      await destinationProblem("https://hooks.example/", false, resolvesTo(["93.184.215.14"])),
    ).toBeNull();
    expect(
      await destinationProblem("https://nowhere.invalid/", false, async () => {
        throw new Error("ENOTFOUND");
      }),
    ).toMatch(/does not resolve/);
    // The setting lets a private network's receivers pass.
    expect(await destinationProblem("http://127.0.0.1:8080/hook", true)).toBeNull();
    expect(await destinationProblem("ftp://127.0.0.1/", true)).toMatch(/http/);
  });

  it("refuses at connect time the DNS answer the socket would use", async () => {
    const error = await new Promise<Error>((resolve) => {
      const req = request("http://localhost:9/", { lookup: guardedLookup, agent: false });
      req.on("error", resolve);
      req.end();
    });
    expect(error).toBeInstanceOf(RefusedDestinationError);
    expect(error.message).toMatch(/localhost .*loopback/);
  });
});

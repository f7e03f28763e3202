import { Writable } from "node:stream";
import type { FleetNode } from "@sluice/db";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createPayloadStorageGuard, nodeUnableToReadZstd } from "./payload-storage-guard.ts";

const own = { release: "0.7.0-dev", commit: "a".repeat(40) };
const node = (release: string, commit: string | null = "b".repeat(40)): FleetNode => ({
  id: `host:1:${release}`,
  host: "host",
  release,
  commit,
  roles: ["api"],
  schemaVersion: 14,
  registered: true,
  ready: true,
  startedAt: new Date(),
  heartbeatAt: new Date(),
});

describe("nodeUnableToReadZstd", () => {
  it("finds a node of a release before 0.6.0, a 0.6.0 dev build or an unregistered one", () => {
    for (const release of ["0.5.0", "0.6.0-dev", "0.3.0 or older", "0.2.1"]) {
      expect(nodeUnableToReadZstd([node("0.6.0"), node(release)], own)?.release).toBe(release);
    }
  });

  it("lets 0.6.0 and later through, and any node of this very commit", () => {
    expect(nodeUnableToReadZstd([node("0.6.0"), node("0.6.1"), node("0.7.0-dev")], own)).toBeNull();
    expect(nodeUnableToReadZstd([node("0.6.0-dev", own.commit)], own)).toBeNull();
    expect(nodeUnableToReadZstd([], own)).toBeNull();
    expect(nodeUnableToReadZstd([node("0.5.0", null)], { ...own, commit: null })?.release).toBe(
      "0.5.0",
    );
  });
});

/** A pino logger whose lines land in `lines` (level and message). */
function collectingLog() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      const { level, msg } = JSON.parse(String(chunk));
      lines.push({ level, msg });
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

describe("createPayloadStorageGuard", () => {
  it("writes any other setting as set, without reading the registry", async () => {
    for (const configured of ["jsonb", "compressed"] as const) {
      const guard = createPayloadStorageGuard(
        configured,
        () => Promise.reject(new Error("not read")),
        own,
        collectingLog().log,
      );
      await guard.check();
      expect(guard.storage()).toBe(configured);
    }
  });

  it("starts compressed, follows the fleet, fails closed, and logs each reason once", async () => {
    let answer: () => Promise<FleetNode[]> = () => Promise.resolve([node("0.6.0")]);
    const { log, lines } = collectingLog();
    const guard = createPayloadStorageGuard("zstd", () => answer(), own, log);
    expect(guard.storage()).toBe("compressed");
    await guard.check();
    expect(guard.storage()).toBe("zstd");
    answer = () => Promise.resolve([node("0.6.0"), node("0.5.0")]);
    await guard.check();
    await guard.check();
    expect(guard.storage()).toBe("compressed");
    answer = () => Promise.reject(new Error("connection refused"));
    await guard.check();
    await guard.check();
    expect(guard.storage()).toBe("compressed");
    answer = () => Promise.resolve([]);
    await guard.check();
    expect(guard.storage()).toBe("zstd");
    answer = () => Promise.reject(new Error("connection refused"));
    await guard.check();
    expect(guard.storage()).toBe("compressed");
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.level, l.msg.split(";")[0]])).toEqual([
      [30, "every live node reads zstd payloads"],
      [
        40,
        "SLUICE_PAYLOAD_STORAGE=zstd: a live node runs a release before 0.6.0, which cannot read zstd payloads",
      ],
      [40, "cannot read the node registry"],
      [30, "every live node reads zstd payloads"],
      [40, "cannot read the node registry"],
    ]);
  });
});

import { compressPayload, decompressPayload } from "@sluice/db";
import { describe, expect, it } from "vitest";
import { CompressionThread } from "./compression-thread.ts";

const payloads = Array.from({ length: 600 }, (_, i) =>
  i % 3 === 0
    ? JSON.stringify({ n: i, message: `caf\u00e9 ${"x".repeat(i)}` })
    : Buffer.from(JSON.stringify({ n: i, frames: Array(i % 40).fill({ f: "fn", l: i }) })),
);

describe("CompressionThread", () => {
  it("gives compressPayload's bytes, in order, for batches larger than one message", async () => {
    const failures: unknown[] = [];
    const thread = new CompressionThread({ onFailure: (e) => failures.push(e) });
    const compressed = await Promise.all(payloads.map((p) => thread.compress(p)));
    compressed.forEach((bytes, i) => {
      expect(bytes.equals(compressPayload(payloads[i] as string | Buffer))).toBe(true);
    });
    expect(decompressPayload(compressed[4] as Buffer)).toEqual({
      n: 4,
      frames: Array(4).fill({ f: "fn", l: 4 }),
    });
    await thread.close();
    expect(failures).toEqual([]);
  });

  it("compresses on the calling thread once closed, and when its thread dies", async () => {
    const failures: unknown[] = [];
    const thread = new CompressionThread({ onFailure: (e) => failures.push(e) });
    await thread.compress("{}");
    // The thread dies with a batch in flight: that batch, and the next, still resolve.
    const worker = (thread as unknown as { worker: { terminate(): Promise<number> } }).worker;
    const pending = Promise.all(payloads.slice(0, 50).map((p) => thread.compress(p)));
    await new Promise((r) => setImmediate(r));
    await worker.terminate();
    const afterDeath = await pending;
    expect(afterDeath.map((b) => b.length)).toEqual(
      payloads.slice(0, 50).map((p) => compressPayload(p).length),
    );
    expect(failures).toHaveLength(1);
    expect((await thread.compress("[1]")).equals(compressPayload("[1]"))).toBe(true);
    await thread.close();
    expect((await thread.compress("{}")).equals(compressPayload("{}"))).toBe(true);
  });
});

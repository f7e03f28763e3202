import { readdirSync, readFileSync } from "node:fs";

/** One request captured from a real SDK (packages/protocol/test/fixtures/sdk-captures/README.md). */
export type Capture = {
  file: string;
  seq: number;
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** The decoded body; the request is re-encoded with its `content-encoding`. */
  body: Buffer;
  envelope?: { header: Record<string, unknown>; items: { header: { type: string } }[] };
};

const dir = new URL("../../../packages/protocol/test/fixtures/sdk-captures/", import.meta.url)
  .pathname;

/** Every capture of every SDK, in file order. */
export function readCaptures(): Capture[] {
  const captures: Capture[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()) {
    for (const line of readFileSync(`${dir}${file}`, "utf8").split("\n")) {
      if (!line.trim()) continue;
      const raw = JSON.parse(line);
      const body =
        raw.body_raw_b64 !== undefined
          ? Buffer.from(raw.body_raw_b64, "base64")
          : Buffer.from(raw.body_raw ?? "", "utf8");
      captures.push({
        file,
        seq: raw.seq,
        method: raw.method,
        path: raw.path,
        query: raw.query,
        headers: raw.headers,
        body,
        envelope: raw.envelope,
      });
    }
  }
  return captures;
}

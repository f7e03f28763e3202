import { promisify } from "node:util";
import { brotliDecompress, gunzip, inflate, inflateRaw } from "node:zlib";

export type BodyResult =
  | { ok: true; body: Buffer }
  | { ok: false; status: 400 | 413 | 415; detail: string };

type Decoder = (input: Buffer, options: { maxOutputLength: number }) => Promise<Buffer>;

const inflateAsync: Decoder = promisify(inflate);
const inflateRawAsync: Decoder = promisify(inflateRaw);
const decoders: Record<string, Decoder> = {
  gzip: promisify(gunzip),
  "x-gzip": promisify(gunzip),
  deflate: inflateAsync,
  br: promisify(brotliDecompress),
};

/**
 * Reads a request body of at most `maxBytes` after decoding its
 * `Content-Encoding` (gzip, x-gzip, deflate, br; identity otherwise, as
 * Relay's `HttpEncoding::parse` treats unknown values). Memory stays bounded:
 * reading stops past `maxBytes` on the wire, and decompression runs off the
 * event loop with zlib's `maxOutputLength`, which aborts a bomb as soon as
 * its output passes `maxBytes`. Chunked bodies work the same. `zstd` gets a
 * 415, since Node 20 has no decoder for it.
 */
export async function readBody(
  stream: ReadableStream<Uint8Array> | null,
  contentEncoding: string | undefined,
  maxBytes: number,
): Promise<BodyResult> {
  const chunks: Buffer[] = [];
  let received = 0;
  if (stream) {
    for await (const chunk of stream) {
      received += chunk.byteLength;
      if (received > maxBytes) {
        await stream.cancel().catch(() => {});
        return { ok: false, status: 413, detail: `request body is larger than ${maxBytes} bytes` };
      }
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
  }
  const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
  const encoding = contentEncoding?.trim().toLowerCase() ?? "identity";
  if (encoding === "zstd") {
    return {
      ok: false,
      status: 415,
      detail: "Content-Encoding zstd is not supported; use gzip or br",
    };
  }
  const decode = decoders[encoding];
  if (!decode) return { ok: true, body: raw };
  const decoded = await decodeBounded(decode, raw, maxBytes, encoding);
  if (decoded.ok || decoded.status !== 400 || encoding !== "deflate") return decoded;
  return decodeBounded(inflateRawAsync, raw, maxBytes, encoding);
}

async function decodeBounded(
  decode: Decoder,
  input: Buffer,
  maxBytes: number,
  name: string,
): Promise<BodyResult> {
  try {
    return { ok: true, body: await decode(input, { maxOutputLength: maxBytes }) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      return {
        ok: false,
        status: 413,
        detail: `decompressed body is larger than ${maxBytes} bytes`,
      };
    }
    return { ok: false, status: 400, detail: `body is not valid ${name} data` };
  }
}

/**
 * Decodes the legacy `/store/` body form `base64(zlib(json))` that old SDKs
 * send without any header (relay-server/src/endpoints/store.rs).
 */
export async function decodeLegacyStoreBody(body: Buffer, maxBytes: number): Promise<BodyResult> {
  const text = body.toString("latin1").trim();
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text)) return { ok: true, body };
  const decoded = await decodeBounded(
    inflateAsync,
    Buffer.from(text, "base64"),
    maxBytes,
    "base64 zlib",
  );
  if (decoded.ok || decoded.status === 413) return decoded;
  return { ok: false, status: 400, detail: "store body is neither JSON nor base64 zlib data" };
}

import type { Context } from "hono";
import { readBody } from "../http/read-body.ts";

type FilePart = { field: string; filename: string; bytes: Uint8Array };

export type Multipart = {
  files: FilePart[];
  /** Text fields in order; a name may repeat (`header`). */
  fields: [string, string][];
};

/**
 * Reads a `multipart/form-data` body of at most `maxBytes` on the wire
 * (read with the ingest's bounded reader, then parsed by undici's FormData).
 * Returns the parts or why the body cannot be read: 413 when too large
 * (a declared `Content-Length` is refused unread; the answer closes the
 * connection), 400 when not multipart.
 */
export async function readMultipart(
  c: Context,
  maxBytes: number,
): Promise<{ ok: true; form: Multipart } | { ok: false; status: 400 | 413; detail: string }> {
  const tooLarge = `request body is larger than ${maxBytes} bytes`;
  const body =
    Number(c.req.header("content-length")) > maxBytes
      ? ({ ok: false, detail: tooLarge } as const)
      : await readBody(c.req.raw.body, undefined, maxBytes);
  if (!body.ok) {
    // The rest of the body stays unread: the client must not reuse this connection.
    c.header("Connection", "close");
    return { ok: false, status: 413, detail: body.detail };
  }
  let form: FormData;
  try {
    form = await new Response(body.body, {
      headers: { "content-type": c.req.header("content-type") ?? "" },
    }).formData();
  } catch {
    return { ok: false, status: 400, detail: "the body must be multipart/form-data" };
  }
  const parsed: Multipart = { files: [], fields: [] };
  for (const [field, value] of form.entries()) {
    if (typeof value === "string") {
      parsed.fields.push([field, value]);
    } else {
      const file = value as Blob & { name: string };
      parsed.files.push({
        field,
        filename: file.name,
        bytes: new Uint8Array(await file.arrayBuffer()),
      });
    }
  }
  return { ok: true, form: parsed };
}

import { jsonDepthExceeds } from "@sluice/protocol";
import type { Context } from "hono";
import type { z } from "zod";
import { readBody } from "../http/read-body.ts";
import type { ApiEnv } from "./api-env.ts";
import { ApiError } from "./api-error.ts";
import { findUnstorableText, parseInput } from "./input.ts";

/**
 * Deepest nesting of arrays and objects an API body may have. Sentry's
 * bodies (releases, commits, assemble) nest a handful of levels; the bound
 * keeps the parse and the walks after it shallow.
 */
const MAX_API_JSON_DEPTH = 64;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The request's JSON body parsed with `schema`. Bounded before any parse:
 * a declared `Content-Length` over `config.maxApiBodyBytes` is refused
 * unread, and the stream is counted as it is read (chunked bodies too);
 * both are 413 with `Connection: close`. Then 400 for a body that is not UTF-8, nests deeper than
 * {@link MAX_API_JSON_DEPTH}, is not JSON, holds a string Postgres cannot
 * store (NUL, a lone surrogate), or does not match `schema` (the detail
 * names the first problem's path).
 */
export async function readJsonBody<T extends z.ZodType>(
  c: Context<ApiEnv>,
  schema: T,
): Promise<z.infer<T>> {
  const max = c.get("services").config.maxApiBodyBytes;
  const declared = Number(c.req.header("content-length"));
  const read =
    declared > max
      ? ({ ok: false, status: 413, detail: `request body is larger than ${max} bytes` } as const)
      : await readBody(c.req.raw.body, undefined, max);
  if (!read.ok) {
    // The rest of the body stays unread: the client must not reuse this connection.
    if (read.status === 413) c.header("Connection", "close");
    throw new ApiError(read.status, read.detail);
  }
  let text: string;
  try {
    text = utf8.decode(read.body);
  } catch {
    throw new ApiError(400, "body: not valid UTF-8");
  }
  if (jsonDepthExceeds(text, MAX_API_JSON_DEPTH)) {
    throw new ApiError(400, `body: JSON nested deeper than ${MAX_API_JSON_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, "body: not valid JSON");
  }
  const unstorable = findUnstorableText(value);
  if (unstorable !== null) {
    throw new ApiError(400, `${unstorable}: must not contain NUL or unpaired surrogates`);
  }
  return parseInput(schema, value, "body");
}

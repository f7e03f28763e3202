import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./api-error.ts";

/** The request's JSON body parsed with `schema`; a 400 naming the first problem otherwise. */
export async function readJsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
): Promise<z.infer<T>> {
  const parsed = schema.safeParse(await c.req.json().catch(() => undefined));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiError(400, `${issue?.path.join(".") || "body"}: ${issue?.message}`);
  }
  return parsed.data;
}

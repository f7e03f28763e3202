import { isStorableText } from "@sluice/db";
import { z } from "zod";
import { ApiError } from "./api-error.ts";

/** A string of at most `max` UTF-16 units that Postgres can store (no NUL, no lone surrogate). */
export const storableText = (max: number) =>
  z.string().max(max).refine(isStorableText, "must not contain NUL or unpaired surrogates");

/**
 * The path (`commits.0.id`) of the first string or key in `value` that
 * Postgres cannot store, or null. Recursive: callers bound the depth first.
 */
export function findUnstorableText(value: unknown, path: string[] = []): string | null {
  if (typeof value === "string") return isStorableText(value) ? null : path.join(".") || "body";
  if (value === null || typeof value !== "object") return null;
  const entries = Array.isArray(value) ? value.entries() : Object.entries(value);
  for (const [key, inner] of entries) {
    const at = [...path, String(key)];
    if (typeof key === "string" && !isStorableText(key)) return at.join(".");
    const found = findUnstorableText(inner, at);
    if (found !== null) return found;
  }
  return null;
}

/**
 * `value` parsed with `schema`, or an ApiError 400 whose detail names the
 * first problem (`projects.0: Too big`; `what` when it is the whole value).
 */
export function parseInput<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String).join(".");
  throw new ApiError(400, `${path || what}: ${issue?.message ?? "invalid"}`);
}

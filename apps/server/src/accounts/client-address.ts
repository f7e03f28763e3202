import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";

/**
 * The client's address for sign-in limits and the audit log: the socket's
 * peer, or with `trustForwardedFor` the last X-Forwarded-For entry (the one
 * our own proxy appended; earlier entries are the client's to forge).
 * Null when neither is known.
 */
export function clientAddress(c: Context, trustForwardedFor: boolean): string | null {
  if (trustForwardedFor) {
    const forwarded = c.req.header("x-forwarded-for");
    const last = forwarded?.split(",").at(-1)?.trim();
    if (last) return last.slice(0, 100);
  }
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

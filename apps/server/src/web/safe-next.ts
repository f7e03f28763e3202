/** Longest `next` path kept through sign-in (characters). */
const MAX_NEXT_LENGTH = 2_000;

/**
 * `next` when it is a path on this site, else null: `//host`, `/\host`
 * (browsers read both as another host), absolute URLs and control
 * characters are refused, so sign-in never redirects off the site.
 */
export function safeNext(next: string | undefined | null): string | null {
  if (!next || next.length > MAX_NEXT_LENGTH) return null;
  if (!next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return null;
  return [...next].some((ch) => ch.charCodeAt(0) < 0x20) ? null : next;
}

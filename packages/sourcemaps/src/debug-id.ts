const HEX32 = /^[0-9a-f]{32}$/;
const DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A debug id in its canonical form, the lowercase dashed UUID, or null when
 * `value` is not one. sentry-cli writes ids dashed into `//# debugId=`, the
 * manifest and the map's `debug_id`; SDKs send `debug_meta.images[].debug_id`
 * dashed, and 32 hex digits are accepted too (docs/protocol.md §8.5).
 * Native-style ids with an age suffix (`…-0`) are not source-map ids.
 */
export function normalizeDebugId(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const id = value.trim().toLowerCase();
  if (DASHED.test(id)) return id;
  if (HEX32.test(id)) {
    return `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20)}`;
  }
  return null;
}

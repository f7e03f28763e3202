/**
 * The URLs under which an uploaded file may stand for the file a frame ran
 * from, most specific first: the URL itself, without query and fragment,
 * and `~/` + its path for "any scheme and host" (Sentry
 * src/sentry/lang/javascript/processor.py `get_cache_keys`,
 * docs/protocol.md §8.7). `file://` is read as a plain path.
 */
export function candidateUrls(url: string): string[] {
  const candidates = new Set<string>([url]);
  const bare = url.replace(/[?#].*$/, "");
  candidates.add(bare);
  const withHost = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(bare);
  if (withHost) {
    candidates.add(`~${withHost[1] ?? "/"}`);
  } else if (bare.startsWith("/")) {
    candidates.add(`~${bare}`);
  }
  if (bare.startsWith("file://")) candidates.add(bare.slice("file://".length));
  return [...candidates];
}

const ANY_HOST = "http://any-host.invalid";

/**
 * Resolves `reference` (a `sourceMappingURL` or `Sourcemap` header) against
 * the URL of the minified file, keeping `~/` URLs in `~/` form. Returns null
 * for a `data:` URL (the caller decodes it) and for what cannot be resolved.
 */
export function resolveSourceMapUrl(minifiedUrl: string, reference: string): string | null {
  if (reference.startsWith("data:")) return null;
  try {
    if (minifiedUrl.startsWith("~/")) {
      const resolved = new URL(reference, `${ANY_HOST}${minifiedUrl.slice(1)}`);
      return resolved.origin === ANY_HOST
        ? `~${resolved.pathname}${resolved.search}`
        : resolved.href;
    }
    if (minifiedUrl.startsWith("/")) {
      return new URL(reference, `file://${minifiedUrl}`).pathname;
    }
    return new URL(reference, minifiedUrl).href;
  } catch {
    return null;
  }
}

/** The last `//# sourceMappingURL=` (or `//@`) of a minified file, if any. */
export function findSourceMappingUrl(source: string): string | null {
  const tail = source.slice(-4096);
  const matches = [...tail.matchAll(/\/\/[#@]\s*sourceMappingURL=(\S+)/g)];
  return matches.at(-1)?.[1] ?? null;
}

/** Decodes a `data:application/json;base64,...` (or percent-encoded) source map URL. */
export function decodeDataUrl(url: string): Uint8Array | null {
  const match = /^data:[^,]*?(;base64)?,(.*)$/s.exec(url);
  if (!match) return null;
  try {
    return match[1]
      ? Buffer.from(match[2] ?? "", "base64")
      : new TextEncoder().encode(decodeURIComponent(match[2] ?? ""));
  } catch {
    return null;
  }
}

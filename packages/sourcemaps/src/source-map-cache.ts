import { AnyMap, decodedMappings, type TraceMap } from "@jridgewell/trace-mapping";

/**
 * Parsed source maps kept across events, keyed by the SHA-1 of their bytes
 * (the same upload always parses the same), least recently used first out
 * once the bytes of the maps held pass `maxBytes`. A map larger than the
 * whole budget is parsed but not kept.
 */
export class SourceMapCache {
  private readonly maps = new Map<string, { map: TraceMap; bytes: number }>();
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * The parsed map for `sha1`, parsing `bytes()` on a miss (regular or
   * indexed maps). Throws when the bytes are not a source map (the caller
   * records `js_invalid_sourcemap`).
   */
  async get(sha1: string, bytes: () => Promise<Uint8Array>): Promise<TraceMap> {
    const key = sha1;
    const hit = this.maps.get(key);
    if (hit) {
      this.maps.delete(key);
      this.maps.set(key, hit);
      return hit.map;
    }
    const raw = await bytes();
    const map = parseSourceMap(raw);
    if (raw.length <= this.maxBytes) {
      this.maps.set(key, { map, bytes: raw.length });
      this.held += raw.length;
      for (const [oldest, entry] of this.maps) {
        if (this.held <= this.maxBytes) break;
        this.maps.delete(oldest);
        this.held -= entry.bytes;
      }
    }
    return map;
  }
}

/** Parses and fully decodes a source map, so that a corrupt one throws here and not later. */
export function parseSourceMap(raw: Uint8Array): TraceMap {
  const json: unknown = JSON.parse(new TextDecoder().decode(raw));
  if (json === null || typeof json !== "object") throw new Error("not a JSON object");
  const sectioned = Array.isArray((json as { sections?: unknown }).sections);
  const plain =
    typeof (json as { mappings?: unknown }).mappings === "string" &&
    Array.isArray((json as { sources?: unknown }).sources);
  if (!sectioned && !plain) throw new Error("no mappings or sources");
  const map = new AnyMap(json as ConstructorParameters<typeof AnyMap>[0]);
  decodedMappings(map);
  return map;
}

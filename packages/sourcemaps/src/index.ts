export { candidateUrls } from "./artifact-urls.ts";
export { normalizeDebugId } from "./debug-id.ts";
export {
  type BundleFile,
  readSourceBundle,
  type SourceBundle,
  type SourceBundleLimits,
} from "./source-bundle.ts";
export { SourceMapCache } from "./source-map-cache.ts";
export {
  type ArtifactLookup,
  type ArtifactRef,
  type ProcessingError,
  type SymbolicationResult,
  symbolicateEvent,
} from "./symbolicate-event.ts";

export { type BlobStore, createDirectoryBlobStore } from "./blob-store.ts";

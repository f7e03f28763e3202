import { createHash, randomUUID } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Where blobs (attachments, upload chunks, uploaded files) are kept: a directory or S3. */
export type BlobStore = {
  /**
   * Stores bytes under a content address and returns its key and sha1;
   * the same bytes always get the same key, so a retry writes nothing new.
   * The file is fsynced before this resolves.
   */
  put(namespace: string, bytes: Uint8Array): Promise<{ key: string; sha1: string }>;
  get(key: string): Promise<Buffer | null>;
  /**
   * Deletes the blob unless it was written (or written again: a `put` of the
   * same bytes) at or after `writtenBefore`; true when it is gone (also when
   * it never existed). For garbage collection of blobs no row refers to: a
   * blob written again is about to be referenced again, so it stays.
   */
  deleteIfWrittenBefore(key: string, writtenBefore: Date): Promise<boolean>;
  /** True when the store holds no blob at all (a restore refuses a store that is not). */
  isEmpty(): Promise<boolean>;
  /** Releases connections (the S3 client's sockets); the store is unusable after. */
  close(): void;
};

/**
 * A blob store in a directory: `{root}/{namespace}/{sha1[0..2]}/{sha1}`,
 * written to a temporary name, fsynced and renamed so that a reader never
 * sees half a file.
 */
export function createDirectoryBlobStore(root: string): BlobStore {
  return {
    async put(namespace, bytes) {
      const sha1 = createHash("sha1").update(bytes).digest("hex");
      const key = `${namespace}/${sha1.slice(0, 2)}/${sha1}`;
      const path = join(root, key);
      await mkdir(dirname(path), { recursive: true });
      // Unique per write: two requests storing the same bytes at once must not share a temporary file.
      const temporary = `${path}.${randomUUID()}.tmp`;
      const file = await open(temporary, "w");
      try {
        await file.writeFile(bytes);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, path);
      return { key, sha1 };
    },
    async get(key) {
      try {
        return await readFile(join(root, key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw error;
      }
    },
    async deleteIfWrittenBefore(key, writtenBefore) {
      const path = join(root, key);
      // Renamed away first, then its time checked: a put that lands between
      // the two writes a new file at `path` (kept), and one that landed
      // before shows in the moved file's mtime, so it is put back (same
      // bytes, so putting it back over a newer copy is harmless).
      const moving = `${path}.${randomUUID()}.gc`;
      try {
        await rename(path, moving);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return true;
        throw error;
      }
      if ((await stat(moving)).mtimeMs >= writtenBefore.getTime()) {
        await rename(moving, path);
        return false;
      }
      await unlink(moving);
      return true;
    },
    async isEmpty() {
      try {
        return (await readdir(root)).length === 0;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return true;
        throw error;
      }
    },
    close() {},
  };
}

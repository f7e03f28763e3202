import { createHash } from "node:crypto";
import type { BlobStore } from "./blob-store.ts";

export type S3BlobStoreOptions = {
  bucket: string;
  /** Key prefix inside the bucket, e.g. `sluice/` (may be empty). */
  prefix: string;
  /** An S3-compatible endpoint (MinIO, Ceph, R2…); null for AWS itself. */
  endpoint: string | null;
  region: string;
  /** Null: the AWS SDK's usual chain (AWS_ACCESS_KEY_ID, profile, IAM role). */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
};

/**
 * A blob store in an S3 bucket (or any S3-compatible service), with the same
 * content addresses as the directory store: `{prefix}{namespace}/{sha1[0..2]}/{sha1}`.
 * A PUT is atomic and the same bytes always land on the same key, so a
 * retry overwrites a blob with itself. With a custom endpoint, path-style
 * addressing is used, as MinIO and most S3-compatible services need.
 * Network and permission errors throw (the caller answers 5xx or retries).
 */
export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  // The AWS SDK is large: load it only when a bucket is configured and used.
  let loading: Promise<typeof import("@aws-sdk/client-s3")> | null = null;
  let s3: import("@aws-sdk/client-s3").S3Client | null = null;
  const sdk = async () => {
    loading ??= import("@aws-sdk/client-s3");
    const module = await loading;
    s3 ??= new module.S3Client({
      region: options.region,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    });
    return { ...module, s3 };
  };
  return {
    async put(namespace, bytes) {
      const sha1 = createHash("sha1").update(bytes).digest("hex");
      const key = `${namespace}/${sha1.slice(0, 2)}/${sha1}`;
      const { s3, PutObjectCommand } = await sdk();
      await s3.send(
        new PutObjectCommand({
          Bucket: options.bucket,
          Key: options.prefix + key,
          Body: bytes,
          ContentMD5: createHash("md5").update(bytes).digest("base64"),
        }),
      );
      return { key, sha1 };
    },
    async get(key) {
      const { s3, GetObjectCommand } = await sdk();
      try {
        const object = await s3.send(
          new GetObjectCommand({ Bucket: options.bucket, Key: options.prefix + key }),
        );
        return object.Body
          ? Buffer.from(await object.Body.transformToByteArray())
          : Buffer.alloc(0);
      } catch (error) {
        if ((error as { name?: string }).name === "NoSuchKey") {
          return null;
        }
        throw error;
      }
    },
    async deleteIfWrittenBefore(key, writtenBefore) {
      // S3 has no conditional delete on time: HEAD, then DELETE. A PUT of the
      // same bytes between the two is lost (a window of one round trip);
      // with bucket versioning on (README "Backups") it can be brought back.
      const { s3, HeadObjectCommand, DeleteObjectCommand } = await sdk();
      try {
        const head = await s3.send(
          new HeadObjectCommand({ Bucket: options.bucket, Key: options.prefix + key }),
        );
        if (head.LastModified && head.LastModified >= writtenBefore) return false;
      } catch (error) {
        if ((error as { name?: string }).name === "NotFound") return true;
        throw error;
      }
      await s3.send(new DeleteObjectCommand({ Bucket: options.bucket, Key: options.prefix + key }));
      return true;
    },
    async isEmpty() {
      const { s3, ListObjectsV2Command } = await sdk();
      const listed = await s3.send(
        new ListObjectsV2Command({ Bucket: options.bucket, Prefix: options.prefix, MaxKeys: 1 }),
      );
      return (listed.KeyCount ?? 0) === 0;
    },
    close() {
      s3?.destroy();
    },
  };
}

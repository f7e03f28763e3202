import { createHash } from "node:crypto";
import { listBlobReferences } from "@sluice/db";
import type { Services } from "../services.ts";

export type BlobProblem = {
  /** The table holding the reference: attachments, artifacts or upload_chunks. */
  table: string;
  id: string;
  blobKey: string;
  problem: "missing" | "corrupt";
};

/**
 * Checks every blob the database refers to (attachments, uploaded files,
 * upload chunks): it must exist and its bytes must have the recorded SHA-1.
 * This is what a restore that brought the database back without the blob
 * directory (or the other way round) breaks. Reads blobs one at a time, so
 * memory stays at the largest blob. Calls `onProblem` as problems are found
 * and returns how many references were checked and what is wrong.
 */
export async function verifyBlobs(
  services: Pick<Services, "db" | "blobs">,
  onProblem: (problem: BlobProblem) => void,
): Promise<{ checked: number; problems: BlobProblem[] }> {
  const problems: BlobProblem[] = [];
  let checked = 0;
  for await (const ref of listBlobReferences(services.db.orm)) {
    checked += 1;
    const bytes = await services.blobs.get(ref.blobKey);
    const sha1 = bytes && createHash("sha1").update(bytes).digest("hex");
    if (sha1 === ref.sha1) continue;
    const problem: BlobProblem = {
      table: ref.table,
      id: ref.id,
      blobKey: ref.blobKey,
      problem: bytes ? "corrupt" : "missing",
    };
    problems.push(problem);
    onProblem(problem);
  }
  return { checked, problems };
}

/**
 * Size limits in bytes, applied after decompression. Defaults follow Relay's
 * `impl Default for Limits` (relay-config/src/config.rs) as summarized in
 * docs/protocol.md §4.2. The envelope, event and attachment limits are
 * settings (SLUICE_MAX_*_BYTES); the others are fixed.
 */
export type Limits = {
  /** Whole envelope body after decompression. */
  maxEnvelopeBytes: number;
  /** One event-like item, and the `/store/` body. */
  maxEventBytes: number;
  /** One attachment item. */
  maxAttachmentBytes: number;
  /** All attachments of one envelope together. */
  maxAttachmentsBytes: number;
  /** Attachment items per envelope. */
  maxAttachmentCount: number;
  /** Session items per envelope (`session` and `sessions`). */
  maxSessionCount: number;
  /** Any other item. */
  maxItemBytes: number;
  /** Deepest JSON nesting accepted in an event payload. */
  maxJsonDepth: number;
};

const MiB = 1024 * 1024;

export const defaultLimits: Limits = {
  maxEnvelopeBytes: 200 * MiB,
  maxEventBytes: 1 * MiB,
  maxAttachmentBytes: 200 * MiB,
  maxAttachmentsBytes: 200 * MiB,
  maxAttachmentCount: 30,
  maxSessionCount: 100,
  maxItemBytes: 12 * MiB,
  maxJsonDepth: 128,
};

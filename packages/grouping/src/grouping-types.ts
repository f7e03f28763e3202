/** Which part of the event produced a hash (Sentry's variant names). */
export type GroupingVariant = "checksum" | "app" | "system" | "default" | "custom" | "fallback";

/** One group hash: 32 lowercase hex digits, and the variant that produced it. */
export type GroupHash = { variant: GroupingVariant; hash: string };

/**
 * CORS headers of every ingest response, preflight or not, success or error,
 * as Relay sends them (relay-server/src/middlewares/cors.rs,
 * docs/protocol.md §1.3), so that browser SDKs can read rate limits.
 */
export const INGEST_CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
  "Access-Control-Allow-Headers":
    "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, authentication, authorization, content-encoding, transfer-encoding, sentry-trace, baggage",
  "Access-Control-Expose-Headers": "x-sentry-error, x-sentry-rate-limits, retry-after",
  "Access-Control-Max-Age": "3600",
};

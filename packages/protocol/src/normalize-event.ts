import { normalizeEventId } from "./event-id.ts";
import { isValidEnvironmentName, isValidReleaseVersion } from "./release-names.ts";

/** One stack frame; fields as in develop.sentry.dev event-payloads/stacktrace. */
export type Frame = {
  filename?: string;
  abs_path?: string;
  function?: string;
  raw_function?: string;
  module?: string;
  package?: string;
  lineno?: number;
  colno?: number;
  context_line?: string;
  pre_context?: string[];
  post_context?: string[];
  in_app?: boolean;
  platform?: string;
  data?: Record<string, unknown>;
  [key: string]: unknown;
};

export type Stacktrace = { frames: Frame[]; [key: string]: unknown };

export type Mechanism = {
  type?: string;
  handled?: boolean;
  synthetic?: boolean;
  is_exception_group?: boolean;
  exception_id?: number;
  parent_id?: number;
  [key: string]: unknown;
};

export type ExceptionValue = {
  type?: string;
  value?: string;
  module?: string;
  mechanism?: Mechanism;
  stacktrace?: Stacktrace;
  [key: string]: unknown;
};

export type Thread = {
  id?: unknown;
  crashed?: boolean;
  current?: boolean;
  stacktrace?: Stacktrace;
  [key: string]: unknown;
};

export type LogEntry = { message?: string; formatted?: string; params?: unknown };

export type EventUser = {
  id?: string;
  email?: string;
  username?: string;
  ip_address?: string;
  [key: string]: unknown;
};

export type Level = "fatal" | "error" | "warning" | "info" | "debug";

/** An event after normalization: one shape whatever form the SDK used. */
export type NormalizedEvent = {
  eventId: string;
  type: string;
  timestamp: Date;
  receivedAt: Date;
  platform: string;
  level: Level;
  logger: string | null;
  transaction: string | null;
  release: string | null;
  environment: string | null;
  dist: string | null;
  serverName: string | null;
  logentry: LogEntry | null;
  exceptions: ExceptionValue[];
  threads: Thread[];
  stacktrace: Stacktrace | null;
  tags: [string, string][];
  fingerprint: string[] | null;
  checksum: string | null;
  user: EventUser | null;
  contexts: Record<string, unknown>;
  request: Record<string, unknown> | null;
  breadcrumbs: Record<string, unknown>[];
  extra: Record<string, unknown>;
  sdk: Record<string, unknown> | null;
  errors: Record<string, unknown>[];
  /** The payload as stored, for the raw JSON view. */
  raw: Record<string, unknown>;
};

const LEVELS: Record<string, Level> = {
  fatal: "fatal",
  critical: "fatal",
  error: "error",
  warning: "warning",
  warn: "warning",
  info: "info",
  log: "info",
  debug: "debug",
};

const MAX_TAG_LENGTH = 200;

/**
 * Normalizes a stored event payload (develop.sentry.dev event-payloads,
 * docs/protocol.md §6): `exception`/`threads`/`breadcrumbs` as a list or
 * `{values}`, `message` as a string or object, `logentry`, tags as an object
 * or pairs (values coerced to strings, keys and values up to 200 chars),
 * lenient levels, `release`/`environment` validated as Sentry does (invalid
 * values dropped). `eventId` and `timestamp` come from the ingest, which
 * already resolved them.
 */
export function normalizeEvent(
  raw: Record<string, unknown>,
  meta: { eventId: string; timestamp: Date; receivedAt: Date },
): NormalizedEvent {
  const exceptions = listOf(raw.exception).filter(isObject) as ExceptionValue[];
  for (const exception of exceptions) {
    exception.stacktrace = stacktraceOf(exception.stacktrace);
    if (exception.type !== undefined) exception.type = stringOr(exception.type, undefined);
    if (exception.value !== undefined) exception.value = stringOr(exception.value, undefined);
  }
  const threads = listOf(raw.threads).filter(isObject) as Thread[];
  for (const thread of threads) thread.stacktrace = stacktraceOf(thread.stacktrace);
  const type =
    typeof raw.type === "string" && raw.type !== ""
      ? raw.type
      : exceptions.length > 0
        ? "error"
        : "default";
  return {
    eventId: normalizeEventId(meta.eventId) ?? meta.eventId,
    type,
    timestamp: meta.timestamp,
    receivedAt: meta.receivedAt,
    platform: stringOr(raw.platform, "other") ?? "other",
    level: levelOf(raw.level),
    logger: stringOr(raw.logger, null),
    transaction: stringOr(raw.transaction, null),
    release: validRelease(raw.release),
    environment: validEnvironment(raw.environment),
    dist: stringOr(raw.dist, null),
    serverName: stringOr(raw.server_name, null),
    logentry: logentryOf(raw),
    exceptions,
    threads,
    stacktrace: raw.stacktrace === undefined ? null : (stacktraceOf(raw.stacktrace) ?? null),
    tags: tagsOf(raw.tags),
    fingerprint: Array.isArray(raw.fingerprint)
      ? raw.fingerprint.flatMap((v) => {
          const value = stringOr(v, null);
          return value === null ? [] : [value];
        })
      : null,
    checksum: stringOr(raw.checksum, null),
    user: isObject(raw.user) ? (raw.user as EventUser) : null,
    contexts: isObject(raw.contexts) ? (raw.contexts as Record<string, unknown>) : {},
    request: isObject(raw.request) ? (raw.request as Record<string, unknown>) : null,
    breadcrumbs: listOf(raw.breadcrumbs).filter(isObject) as Record<string, unknown>[],
    extra: isObject(raw.extra) ? (raw.extra as Record<string, unknown>) : {},
    sdk: isObject(raw.sdk) ? (raw.sdk as Record<string, unknown>) : null,
    errors: Array.isArray(raw.errors)
      ? (raw.errors.filter(isObject) as Record<string, unknown>[])
      : [],
    raw,
  };
}

/** Lenient level (`warn`, `log`, case-insensitive); an own-property lookup, since the value is client input. */
function levelOf(value: unknown): Level {
  const name = stringOr(value, "error").toLowerCase();
  return Object.hasOwn(LEVELS, name) ? (LEVELS[name] as Level) : "error";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function stringOr<T>(value: unknown, fallback: T): string | T {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return fallback;
}

function listOf(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (isObject(value)) {
    if (Array.isArray(value.values)) return value.values;
    if ("type" in value || "value" in value || "stacktrace" in value) return [value];
  }
  return [];
}

function stacktraceOf(value: unknown): Stacktrace | undefined {
  if (!isObject(value) || !Array.isArray(value.frames)) return undefined;
  return { ...value, frames: value.frames.filter(isObject) as Frame[] };
}

function logentryOf(raw: Record<string, unknown>): LogEntry | null {
  const source = isObject(raw.logentry) ? raw.logentry : raw.message;
  if (typeof source === "string") return source === "" ? null : { formatted: source };
  if (isObject(source)) {
    const entry: LogEntry = {};
    if (typeof source.message === "string") entry.message = source.message;
    if (typeof source.formatted === "string") entry.formatted = source.formatted;
    if (source.params !== undefined) entry.params = source.params;
    if (entry.message === undefined && entry.formatted === undefined) return null;
    if (entry.formatted === undefined && typeof raw.message === "string") {
      entry.formatted = raw.message;
    }
    return entry;
  }
  return null;
}

function tagsOf(value: unknown): [string, string][] {
  const pairs: [unknown, unknown][] = Array.isArray(value)
    ? value
        .filter((p): p is unknown[] => Array.isArray(p) && p.length === 2)
        .map((p) => [p[0], p[1]])
    : isObject(value)
      ? Object.entries(value)
      : [];
  const out: [string, string][] = [];
  for (const [key, tagValue] of pairs) {
    if (typeof key !== "string" || key === "" || key.length > MAX_TAG_LENGTH) continue;
    if (tagValue === null || tagValue === undefined) continue;
    const text = typeof tagValue === "string" ? tagValue : JSON.stringify(tagValue);
    if (text === "") continue;
    out.push([key, text.slice(0, MAX_TAG_LENGTH)]);
  }
  return out;
}

/** The release as sent, trimmed, when it is valid (`isValidReleaseVersion`); else null. */
function validRelease(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const trimmed = value.trim();
  return isValidReleaseVersion(trimmed) ? trimmed : null;
}

/** The environment as sent, trimmed, when it is valid (`isValidEnvironmentName`); else null. */
function validEnvironment(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const trimmed = value.trim();
  return isValidEnvironmentName(trimmed) ? trimmed : null;
}

import { createRequire } from "node:module";
import { pino } from "pino";

export type Logger = pino.Logger;

export type LoggerOptions = {
  /** Readable lines (pino-pretty) instead of JSON; by default when stderr is a terminal. */
  pretty?: boolean;
  /** Where lines go instead of stderr (tests). */
  destination?: pino.DestinationStream;
};

/**
 * Structured JSON logs on stderr (stdout stays free for what a command
 * prints, such as a DSN or `--json` output); readable lines through
 * pino-pretty when stderr is a terminal. Errors under `err` (or `error`)
 * go through `serializeError`, so no SQL, parameters or row data reach a log.
 */
export function createLogger(level: string, role: string, options: LoggerOptions = {}): Logger {
  const settings: pino.LoggerOptions = {
    level,
    base: { service: "sluice", role },
    serializers: { err: serializeError, error: serializeError },
  };
  if (options.destination) return pino(settings, options.destination);
  if (options.pretty ?? process.stderr.isTTY === true) return pino(settings, prettyStderr());
  return pino(settings, pino.destination(2));
}

/** pino-pretty, loaded only for a terminal (deployments never pay for it). */
function prettyStderr(): pino.DestinationStream {
  const pretty = createRequire(import.meta.url)("pino-pretty") as (options: object) => never;
  return pretty({
    destination: 2,
    sync: true,
    colorize: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,service",
  });
}

/** Longest message kept, in characters: enough for any error of ours or Postgres's. */
const MAX_MESSAGE = 500;
const MAX_CAUSES = 3;

/**
 * Fields of a `pg` DatabaseError (and Node system errors) that name what
 * failed without carrying data: SQLSTATE, severity, the server routine and
 * the schema objects involved. Left out on purpose: `detail` ("Failing row
 * contains (…)", key values), `where` and `internalQuery` (SQL), `hint`,
 * and every field of pg's client or connection (host, user, password).
 */
const SAFE_FIELDS = [
  "code",
  "severity",
  "routine",
  "schema",
  "table",
  "column",
  "constraint",
  "dataType",
  "syscall",
  "errno",
] as const;

/**
 * The pino serializer of errors: `{type, message, stack, …safe fields,
 * cause}`. A drizzle `DrizzleQueryError` ("Failed query: <SQL> params:
 * <values>") is logged as its cause, the driver's error; a message keeps its
 * first line only, bounded, with every quoted string masked unless it names
 * a schema object (`invalid input syntax for type uuid: "…"`, but
 * `constraint "events_pkey"`); the stack keeps only its frames.
 * Anything that is not an Error is logged by type alone.
 */
export function serializeError(value: unknown, depth = 0): Record<string, unknown> {
  if (!(value instanceof Error)) {
    return { type: value === null ? "null" : typeof value };
  }
  const wrapped = isDrizzleQueryError(value) ? value.cause : undefined;
  if (wrapped instanceof Error) {
    return { ...serializeError(wrapped, depth), wrappedBy: "DrizzleQueryError" };
  }
  const type = value.constructor?.name || value.name || "Error";
  const message = isDrizzleQueryError(value) ? "Failed query" : safeMessage(value.message);
  const out: Record<string, unknown> = { type, message };
  const fields = value as unknown as Record<string, unknown>;
  for (const field of SAFE_FIELDS) {
    const v = fields[field];
    if (typeof v === "string" || typeof v === "number") out[field] = v;
  }
  const frames = (value.stack ?? "").split("\n").filter((line) => /^\s+at /.test(line));
  out.stack = [`${type}: ${message}`, ...frames].join("\n");
  if (value instanceof AggregateError && depth < MAX_CAUSES) {
    out.errors = value.errors.slice(0, MAX_CAUSES).map((e) => serializeError(e, depth + 1));
  }
  if (value.cause !== undefined && depth < MAX_CAUSES) {
    out.cause = serializeError(value.cause, depth + 1);
  }
  return out;
}

function isDrizzleQueryError(error: Error): error is Error & { query: unknown; params: unknown } {
  return (
    error.constructor?.name === "DrizzleQueryError" || error.message.startsWith("Failed query:")
  );
}

/** Words after which Postgres quotes a name, not a value (`constraint "events_pkey"`). */
const NAMES = new Set(
  "constraint relation column table index type function schema database role sequence view trigger extension encoding user".split(
    " ",
  ),
);

function safeMessage(message: string): string {
  const firstLine = (message.split("\n", 1)[0] ?? "").slice(0, MAX_MESSAGE * 4);
  const masked = firstLine.replace(/(\w+ )?"(?:[^"\\]|\\.)*"?/g, (quoted, word?: string) =>
    word && NAMES.has(word.trim().toLowerCase()) ? quoted : `${word ?? ""}"…"`,
  );
  return masked.slice(0, MAX_MESSAGE);
}

import type { NormalizedEvent } from "./normalize-event.ts";

/**
 * Longest tag key and value indexed, in characters: Relay's bound on tags
 * (relay-event-schema `TagEntry`, `max_chars = 200`); normalizeEvent already
 * drops longer keys and cuts longer values. Sentry's own SDK-facing limits
 * (src/sentry/constants.py MAX_TAG_KEY_LENGTH = 32, MAX_TAG_VALUE_LENGTH =
 * 200) are stricter on keys; Sluice keeps what Relay lets through.
 */
export const MAX_TAG_KEY_LENGTH = 200;
export const MAX_TAG_VALUE_LENGTH = 200;
/**
 * Most of an event's own tags indexed; the derived ones below come on top.
 * Sentry documents no per-event count, so this is Sluice's bound: it keeps
 * one event from writing thousands of index rows.
 */
export const MAX_EVENT_TAGS = 50;

/**
 * Contexts whose fields Sentry turns into tags (src/sentry/interfaces/
 * contexts.py `context_to_tag_mapping`): `browser` ("Chrome 120") and
 * `browser.name`, `os` and `os.name`, `runtime` and `runtime.name`,
 * `device` (its model) and `device.family`.
 */
const CONTEXT_TAGS: { context: string; whole: (c: Record<string, unknown>) => unknown }[] = [
  { context: "browser", whole: (c) => joined(c.name, c.version) },
  { context: "os", whole: (c) => joined(c.name, c.version) },
  { context: "runtime", whole: (c) => joined(c.name, c.version) },
  { context: "device", whole: (c) => c.model },
];
const CONTEXT_FIELDS: Record<string, string> = {
  browser: "name",
  os: "name",
  runtime: "name",
  device: "family",
};

const storable = (text: string) => !text.includes("\u0000") && text.isWellFormed();

function joined(name: unknown, version: unknown): string | null {
  if (typeof name !== "string" || name === "") return null;
  return typeof version === "string" && version !== "" ? `${name} ${version}` : name;
}

/**
 * The tags Sentry indexes for an event, as (key, value) pairs with distinct
 * keys: its own tags (the first {@link MAX_EVENT_TAGS}), then the ones
 * Sentry derives when the event lacks them: `level`, `environment`,
 * `release`, `dist`, `server_name`, `transaction`, `logger`, `user`
 * (`id:…`, `email:…`, as Sentry's `sentry:user`), `url`, and the context
 * tags above. Keys and values are at most 200 characters; empty values are
 * left out.
 */
export function indexedEventTags(event: NormalizedEvent): [string, string][] {
  const out = new Map<string, string>();
  const add = (key: string, value: unknown) => {
    if (out.has(key) || key === "" || key.length > MAX_TAG_KEY_LENGTH) return;
    if (typeof value !== "string" && typeof value !== "number") return;
    let text = String(value).slice(0, MAX_TAG_VALUE_LENGTH);
    // The cut must not split a surrogate pair.
    if (/[\uD800-\uDBFF]$/.test(text)) text = text.slice(0, -1);
    // Postgres text refuses NUL and the JSON the worker sends refuses lone surrogates.
    if (text === "" || !storable(key) || !storable(text)) return;
    out.set(key, text);
  };
  for (const [key, value] of event.tags.slice(0, MAX_EVENT_TAGS)) add(key, value);
  add("level", event.level);
  add("environment", event.environment);
  add("release", event.release);
  add("dist", event.dist);
  add("server_name", event.serverName);
  add("transaction", event.transaction);
  add("logger", event.logger);
  add("user", userTag(event));
  const url = event.request?.url;
  if (typeof url === "string") add("url", url.split(/[?#]/)[0]);
  const fromAgent = contextsFromUserAgent(event);
  for (const { context, whole } of CONTEXT_TAGS) {
    const c = event.contexts[context] ?? fromAgent[context];
    if (c === null || typeof c !== "object" || Array.isArray(c)) continue;
    const fields = c as Record<string, unknown>;
    add(context, whole(fields));
    const field = CONTEXT_FIELDS[context] as string;
    add(`${context}.${field}`, fields[field]);
  }
  return [...out];
}

/** Browsers by User-Agent token, most specific first (Edge and Opera also say Chrome). */
const BROWSERS: [string, RegExp][] = [
  ["Edge", /\bEdg(?:e|A|iOS)?\/(\d+(?:\.\d+)?)/],
  ["Opera", /\bOPR\/(\d+(?:\.\d+)?)/],
  ["HeadlessChrome", /\bHeadlessChrome\/(\d+(?:\.\d+)?)/],
  ["Chrome Mobile", /\bChrome\/(\d+(?:\.\d+)?)[^)]*\bMobile\b/],
  ["Chrome", /\b(?:Chrome|CriOS)\/(\d+(?:\.\d+)?)/],
  ["Firefox", /\b(?:Firefox|FxiOS)\/(\d+(?:\.\d+)?)/],
  ["Mobile Safari", /\bVersion\/(\d+(?:\.\d+)?)[^)]*\bMobile\/\S+ Safari\//],
  ["Safari", /\bVersion\/(\d+(?:\.\d+)?)[^)]*\bSafari\//],
];
const SYSTEMS: [string, RegExp][] = [
  ["Windows", /\bWindows NT (\d+\.\d+)/],
  ["iOS", /\b(?:iPhone|CPU) OS (\d+)_(\d+)/],
  ["Mac OS X", /\bMac OS X (\d+)[_.](\d+)/],
  ["Android", /\bAndroid (\d+(?:\.\d+)?)/],
  ["Chrome OS", /\bCrOS\b/],
  ["Linux", /\bLinux\b/],
];

/**
 * `browser` and `os` contexts read from the request's User-Agent when the
 * event has none: Relay fills them in so (relay-event-normalization
 * `normalize_user_agent`, with uap-core's names for the common browsers and
 * systems). A few patterns, not the whole uap-core list; unknown agents
 * give none.
 */
function contextsFromUserAgent(event: NormalizedEvent): Record<string, Record<string, unknown>> {
  const headers = event.request?.headers;
  let agent: unknown;
  if (Array.isArray(headers)) {
    agent = headers.find(
      (h) => Array.isArray(h) && String(h[0]).toLowerCase() === "user-agent",
    )?.[1];
  } else if (headers && typeof headers === "object") {
    const entry = Object.entries(headers).find(([k]) => k.toLowerCase() === "user-agent");
    agent = entry?.[1];
  }
  if (typeof agent !== "string" || agent.length > 1_000) return {};
  const out: Record<string, Record<string, unknown>> = {};
  const browser = BROWSERS.find(([, re]) => re.test(agent));
  if (browser) out.browser = { name: browser[0], version: browser[1].exec(agent)?.[1] };
  const system = SYSTEMS.find(([, re]) => re.test(agent));
  if (system) {
    const m = system[1].exec(agent);
    const version = m?.[1] ? (m[2] ? `${m[1]}.${m[2]}` : m[1]) : undefined;
    out.os = { name: system[0], version };
  }
  return out;
}

/** Sentry's `sentry:user` tag value: the first of id, email, username, IP, prefixed. */
function userTag(event: NormalizedEvent): string | null {
  const u = event.user;
  if (!u) return null;
  for (const field of ["id", "email", "username", "ip_address"] as const) {
    const v = u[field];
    if ((typeof v === "string" && v !== "" && v !== "{{auto}}") || typeof v === "number")
      return `${field}:${v}`;
  }
  return null;
}

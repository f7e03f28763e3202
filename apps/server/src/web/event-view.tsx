import type { StoredEventRow } from "@sluice/db";
import { describeIssue } from "@sluice/grouping";
import {
  type ExceptionValue,
  type Frame,
  type NormalizedEvent,
  normalizeEvent,
} from "@sluice/protocol";
import { exactTime, RelativeTime } from "./components.tsx";

/**
 * One event as the issue and event pages show it, in Sentry's order:
 * the exception chain with stack traces, the message, breadcrumbs, the
 * request, user, contexts, SDK, tags and extra data. Lists are capped so a
 * large payload makes a long page, never an unbounded one.
 */

const MAX_FRAMES = 200;
const MAX_BREADCRUMBS = 100;
const MAX_ENTRIES = 100;
const MAX_TEXT = 2_000;

/** Reads a stored row into the normalized event the views use. */
export function readEvent(row: StoredEventRow): NormalizedEvent {
  return normalizeEvent(row.payload, {
    eventId: row.eventId.replaceAll("-", ""),
    timestamp: row.timestamp,
    receivedAt: row.receivedAt,
  });
}

/** The event's tags with Sentry's built-in ones (level, environment, release, ...) added, by key. */
export function eventTags(event: NormalizedEvent): [string, string][] {
  const tags = [...event.tags];
  const builtIn: [string, string | null][] = [
    ["level", event.level],
    ["environment", event.environment],
    ["release", event.release],
    ["server_name", event.serverName],
    ["transaction", event.transaction],
    ["user", userLabel(event)],
  ];
  for (const [key, value] of builtIn) {
    if (value && !tags.some(([k]) => k === key)) tags.push([key, value]);
  }
  return tags.sort(([a], [b]) => a.localeCompare(b));
}

function userLabel(event: NormalizedEvent): string | null {
  const u = event.user;
  if (!u) return null;
  for (const field of ["id", "email", "username", "ip_address"] as const) {
    const v = u[field];
    if (typeof v === "string" && v !== "") return `${field}:${v}`;
  }
  return null;
}

function clip(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

function frameLocation(frame: Frame): string {
  const file = frame.filename ?? frame.abs_path ?? frame.module ?? "<unknown>";
  const line = typeof frame.lineno === "number" ? `:${frame.lineno}` : "";
  const col = typeof frame.colno === "number" ? `:${frame.colno}` : "";
  return `${file}${line}${col}`;
}

function ContextLines({ frame }: { frame: Frame }) {
  if (typeof frame.context_line !== "string") return null;
  const line = typeof frame.lineno === "number" ? frame.lineno : null;
  const pre = (frame.pre_context ?? []).slice(-10);
  const post = (frame.post_context ?? []).slice(0, 10);
  const number = (offset: number) => (line === null ? "" : String(line + offset));
  return (
    <pre class="context">
      {pre.map((text, i) => (
        <span>
          <i>{number(i - pre.length)}</i>
          {clip(text)}
        </span>
      ))}
      <span class="current">
        <i>{number(0)}</i>
        {clip(frame.context_line)}
      </span>
      {post.map((text, i) => (
        <span>
          <i>{number(i + 1)}</i>
          {clip(text)}
        </span>
      ))}
    </pre>
  );
}

function FrameView({ frame, raw }: { frame: Frame; raw: Frame | undefined }) {
  const fn = frame.function ?? "?";
  const moved =
    raw &&
    (raw.filename !== frame.filename ||
      raw.lineno !== frame.lineno ||
      raw.abs_path !== frame.abs_path);
  return (
    <>
      <div class="frame-head">
        <span class="fn">{fn}</span>
        <span class="muted"> in </span>
        <span class="file" title={frame.abs_path ?? undefined}>
          {frameLocation(frame)}
        </span>
        {frame.in_app ? <span class="tag">in app</span> : null}
      </div>
      <ContextLines frame={frame} />
      {moved && raw ? (
        <details class="minified">
          <summary>Minified location</summary>
          <p class="mono">
            {`${raw.function ?? "?"} in ${raw.abs_path ?? raw.filename ?? "<unknown>"}${typeof raw.lineno === "number" ? `:${raw.lineno}` : ""}${typeof raw.colno === "number" ? `:${raw.colno}` : ""}`}
          </p>
          {typeof frame.data?.sourcemap === "string" ? (
            <p class="muted">{`Source map: ${frame.data.sourcemap}`}</p>
          ) : null}
        </details>
      ) : null}
    </>
  );
}

/**
 * A stack trace most recent call first, as Sentry shows it: in-app frames
 * open and highlighted, each run of system frames folded into one
 * `<details>` ("N system frames"). A trace with no in-app frame at all
 * shows every frame open (there is nothing else to look at).
 */
function StackTrace({ frames, rawFrames }: { frames: Frame[]; rawFrames: Frame[] | undefined }) {
  const indexed = frames
    .map((frame, i) => ({ frame, raw: rawFrames?.[i] }))
    .reverse()
    .slice(0, MAX_FRAMES);
  const anyInApp = indexed.some((f) => f.frame.in_app);
  type Group =
    | { inApp: true; item: (typeof indexed)[number] }
    | { inApp: false; items: typeof indexed };
  const groups: Group[] = [];
  for (const item of indexed) {
    if (item.frame.in_app || !anyInApp) groups.push({ inApp: true, item });
    else {
      const last = groups.at(-1);
      if (last && !last.inApp) last.items.push(item);
      else groups.push({ inApp: false, items: [item] });
    }
  }
  return (
    <ol class="frames" aria-label="Stack trace, most recent call first">
      {groups.map((g) =>
        g.inApp ? (
          <li class={g.item.frame.in_app ? "in-app" : ""}>
            <FrameView frame={g.item.frame} raw={g.item.raw} />
          </li>
        ) : (
          <li>
            <details class="system">
              <summary>{`${g.items.length} system frame${g.items.length === 1 ? "" : "s"}`}</summary>
              <ol>
                {g.items.map((item) => (
                  <li>
                    <FrameView frame={item.frame} raw={item.raw} />
                  </li>
                ))}
              </ol>
            </details>
          </li>
        ),
      )}
    </ol>
  );
}

function ExceptionView({ exception, index }: { exception: ExceptionValue; index: number }) {
  const raw = exception.raw_stacktrace as { frames?: Frame[] } | undefined;
  const mechanism = exception.mechanism;
  return (
    <section class="exception" aria-labelledby={`exception-${index}`}>
      <h3 id={`exception-${index}`}>{exception.type ?? "Error"}</h3>
      {exception.value ? <p class="value">{clip(exception.value)}</p> : null}
      {mechanism ? (
        <p class="muted">
          {`mechanism: ${mechanism.type ?? "generic"}${mechanism.handled === false ? " · unhandled" : mechanism.handled === true ? " · handled" : ""}`}
        </p>
      ) : null}
      {exception.stacktrace && exception.stacktrace.frames.length > 0 ? (
        <StackTrace frames={exception.stacktrace.frames} rawFrames={raw?.frames} />
      ) : (
        <p class="muted">No stack trace was sent.</p>
      )}
    </section>
  );
}

function KeyValues({ label, entries }: { label: string; entries: [string, unknown][] }) {
  return (
    <dl class="facts" aria-label={label}>
      {entries.slice(0, MAX_ENTRIES).flatMap(([k, v]) => [<dt>{k}</dt>, <dd>{clip(v)}</dd>])}
    </dl>
  );
}

function objectEntries(value: unknown): [string, unknown][] {
  if (value === null || typeof value !== "object") return [];
  if (Array.isArray(value)) {
    return value.flatMap((pair) =>
      Array.isArray(pair) && pair.length === 2
        ? [[String(pair[0]), pair[1]] as [string, unknown]]
        : [],
    );
  }
  return Object.entries(value as Record<string, unknown>);
}

function breadcrumbTime(value: unknown): Date | null {
  if (typeof value === "number") return new Date(value * 1000);
  if (typeof value === "string") {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return null;
}

/** The whole event: title line, exceptions, message, breadcrumbs, request, user, contexts, SDK, tags. */
export function EventView({ event }: { event: NormalizedEvent }) {
  const described = describeIssue(event);
  const exceptions = [...event.exceptions].reverse();
  const crumbs = event.breadcrumbs.slice(-MAX_BREADCRUMBS).reverse();
  const request = event.request;
  const contexts = Object.entries(event.contexts).filter(([, v]) => v && typeof v === "object");
  const tags = eventTags(event);
  // Without an exception, the thread that crashed (else the current one) holds the trace.
  const crashedThread =
    event.threads.find((th) => th.crashed && th.stacktrace) ??
    event.threads.find((th) => th.current && th.stacktrace) ??
    event.threads.find((th) => th.stacktrace);
  return (
    <article aria-label={`Event ${event.eventId}`}>
      <p class="muted">
        {"Event "}
        <span class="mono">{event.eventId}</span>
        {" · "}
        <RelativeTime date={event.timestamp} />
        {` · received ${exactTime(event.receivedAt)}`}
        {event.release ? ` · release ${event.release}` : ""}
        {event.environment ? ` · ${event.environment}` : ""}
      </p>
      {exceptions.length > 0 ? (
        <section aria-labelledby="exceptions-heading">
          <h2 id="exceptions-heading">
            {exceptions.length > 1 ? "Exceptions (most recent first)" : "Exception"}
          </h2>
          {exceptions.map((exception, i) => (
            <ExceptionView exception={exception} index={i} />
          ))}
        </section>
      ) : null}
      {event.logentry ? (
        <section aria-labelledby="message-heading">
          <h2 id="message-heading">Message</h2>
          <pre class="context">
            <span>{clip(event.logentry.formatted ?? event.logentry.message ?? "")}</span>
          </pre>
        </section>
      ) : null}
      {exceptions.length === 0 && crashedThread?.stacktrace ? (
        <section aria-labelledby="thread-heading">
          <h2 id="thread-heading">
            {`Thread ${clip(crashedThread.name ?? crashedThread.id ?? "")}`.trim()}
          </h2>
          <StackTrace
            frames={crashedThread.stacktrace.frames}
            rawFrames={(crashedThread.raw_stacktrace as { frames?: Frame[] } | undefined)?.frames}
          />
        </section>
      ) : null}
      {exceptions.length === 0 && !crashedThread?.stacktrace && event.stacktrace ? (
        <section aria-labelledby="stack-heading">
          <h2 id="stack-heading">Stack trace</h2>
          <StackTrace frames={event.stacktrace.frames} rawFrames={undefined} />
        </section>
      ) : null}
      {crumbs.length > 0 ? (
        <section aria-labelledby="breadcrumbs-heading">
          <h2 id="breadcrumbs-heading">Breadcrumbs</h2>
          <table aria-label="Breadcrumbs, most recent first">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Category</th>
                <th scope="col">Level</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {crumbs.map((crumb) => {
                const at = breadcrumbTime(crumb.timestamp);
                return (
                  <tr>
                    <td>
                      {at ? (
                        <time datetime={at.toISOString()} title={exactTime(at)}>
                          {at.toISOString().slice(11, 23)}
                        </time>
                      ) : (
                        ""
                      )}
                    </td>
                    <td>{clip(crumb.category ?? crumb.type ?? "")}</td>
                    <td>{clip(crumb.level ?? "info")}</td>
                    <td class="mono">{clip(crumb.message ?? (crumb.data ? crumb.data : ""))}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      ) : null}
      {request ? (
        <section aria-labelledby="request-heading">
          <h2 id="request-heading">Request</h2>
          <p class="mono">{`${clip(request.method ?? "GET")} ${clip(request.url ?? "")}`}</p>
          {objectEntries(request.headers).length > 0 ? (
            <>
              <h3>Headers</h3>
              <KeyValues label="Request headers" entries={objectEntries(request.headers)} />
            </>
          ) : null}
          {request.query_string ? (
            <>
              <h3>Query</h3>
              <p class="mono">{clip(request.query_string)}</p>
            </>
          ) : null}
        </section>
      ) : null}
      {event.user ? (
        <section aria-labelledby="user-heading">
          <h2 id="user-heading">User</h2>
          <KeyValues label="User" entries={Object.entries(event.user)} />
        </section>
      ) : null}
      {contexts.length > 0 ? (
        <section aria-labelledby="contexts-heading">
          <h2 id="contexts-heading">Contexts</h2>
          {contexts.map(([name, value]) => (
            <>
              <h3>{name}</h3>
              <KeyValues
                label={`Context ${name}`}
                entries={objectEntries(value).filter(([k]) => k !== "type")}
              />
            </>
          ))}
        </section>
      ) : null}
      {event.sdk ? (
        <section aria-labelledby="sdk-heading">
          <h2 id="sdk-heading">SDK</h2>
          <KeyValues
            label="SDK"
            entries={[
              ["name", event.sdk.name ?? ""],
              ["version", event.sdk.version ?? ""],
            ]}
          />
        </section>
      ) : null}
      {tags.length > 0 ? (
        <section aria-labelledby="tags-heading">
          <h2 id="tags-heading">Tags</h2>
          <ul class="tags" aria-label="Tags of this event">
            {tags.map(([k, v]) => (
              <li>
                <span class="k">{k}</span>
                <span>{v}</span>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {Object.keys(event.extra).length > 0 ? (
        <section aria-labelledby="extra-heading">
          <h2 id="extra-heading">Additional data</h2>
          <KeyValues label="Additional data" entries={Object.entries(event.extra)} />
        </section>
      ) : null}
      {event.errors.length > 0 ? (
        <section aria-labelledby="errors-heading">
          <h2 id="errors-heading">Processing errors</h2>
          <ul>
            {event.errors.slice(0, MAX_ENTRIES).map((e) => (
              <li>
                {clip(
                  `${e.type ?? "error"}${e.name ? ` (${e.name})` : ""}${e.reason ? `: ${e.reason}` : ""}${e.url ? ` ${e.url}` : ""}`,
                )}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <p class="muted">{`Grouped as: ${described.title}`}</p>
    </article>
  );
}

import type { Frame, NormalizedEvent } from "@sluice/protocol";
import { isInApp } from "./frame-values.ts";

/** What an issue shows of the event that defines it. */
export type IssueMetadata = {
  /** `error` when the event has an exception, else `default` (Sentry event types). */
  type: string;
  title: string;
  culprit: string;
  metadata: {
    type?: string;
    value?: string;
    filename?: string;
    function?: string;
    title?: string;
  };
};

const MAX_TITLE = 200;
const MAX_CULPRIT = 200;

/**
 * Title, culprit and metadata of the issue an event belongs to, as Sentry's
 * event types compute them (src/sentry/eventtypes/error.py and base.py):
 * an error is titled `Type: first line of value`, a message event by its
 * first line (also when the only exception is the synthetic one an SDK adds
 * to carry a message's stack trace); the culprit is the transaction, else
 * the crashing in-app frame.
 */
export function describeIssue(event: NormalizedEvent): IssueMetadata {
  const culprit = (event.transaction ?? culpritFromFrames(event)).slice(0, MAX_CULPRIT);
  const main = event.exceptions.at(-1);
  const message = firstLine(event.logentry?.formatted ?? event.logentry?.message ?? "");
  const syntheticUntyped = main?.mechanism?.synthetic === true && !main.type;
  if (main && !(syntheticUntyped && message)) {
    const type = main.type ?? "Error";
    const value = firstLine(main.value ?? "");
    const frame = crashFrame(main.stacktrace?.frames ?? []);
    const title = value ? `${type}: ${value}` : type;
    return {
      type: "error",
      title: title.slice(0, MAX_TITLE),
      culprit,
      metadata: {
        type,
        value: main.value ?? "",
        ...(frame?.filename ? { filename: frame.filename } : {}),
        ...(frame?.function ? { function: frame.function } : {}),
      },
    };
  }
  const title = (message || "<unlabeled event>").slice(0, MAX_TITLE);
  return { type: "default", title, culprit, metadata: { title } };
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

function crashFrame(frames: Frame[]): Frame | undefined {
  return frames.findLast(isInApp) ?? frames.at(-1);
}

function culpritFromFrames(event: NormalizedEvent): string {
  const frames = event.exceptions.at(-1)?.stacktrace?.frames ?? event.stacktrace?.frames ?? [];
  const frame = crashFrame(frames);
  if (!frame) return "";
  const where = frame.module ?? frame.filename ?? frame.abs_path ?? "?";
  const fn = frame.function ?? "?";
  const platform = frame.platform ?? event.platform;
  return platform === "javascript" || platform === "node" ? `${fn}(${where})` : `${where} in ${fn}`;
}

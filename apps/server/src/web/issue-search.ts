import type { IncludeExclude, IssueStatus } from "@sluice/db";

/**
 * Sentry's issue search syntax, as its search bar writes it
 * (docs.sentry.io/concepts/search/): `key:value` filters, `key:"a value"`
 * quoted, `!key:value` negated, and any other word free text (`"two words"`
 * one phrase). Sluice reads the keys it can answer from the issue rows:
 * `is:`, `level:`, `release:`, `user.email:`, `has:user`, `has:release`.
 * Others (`environment:`, other tags, other `has:`) need a per-issue tag
 * index the schema does not have yet, so the page names them as not applied
 * instead of pretending to filter.
 */

/** Longest query read (the search box sends a few words). */
export const MAX_QUERY_LENGTH = 1_000;
/** Most terms read from one query; the rest are reported as ignored. */
const MAX_TERMS = 30;

export type SearchTerm =
  | { kind: "filter"; key: string; value: string; negated: boolean }
  | { kind: "text"; value: string; negated: boolean };

/**
 * Splits a query into terms. Quotes group words (`"a b"`, `key:"a b"`), a
 * backslash escapes a quote inside them; a leading `!` negates; an
 * unterminated quote runs to the end. Never throws.
 */
export function tokenizeSearch(query: string): SearchTerm[] {
  const terms: SearchTerm[] = [];
  let i = 0;
  const text = query.slice(0, MAX_QUERY_LENGTH);
  const readQuoted = (): string => {
    // text[i] is the opening quote.
    i += 1;
    let out = "";
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\" && i + 1 < text.length) i += 1;
      out += text[i];
      i += 1;
    }
    i += 1;
    return out;
  };
  while (i < text.length) {
    if (/\s/.test(text[i] as string)) {
      i += 1;
      continue;
    }
    let negated = false;
    if (text[i] === "!" && i + 1 < text.length && !/\s/.test(text[i + 1] as string)) {
      negated = true;
      i += 1;
    }
    if (text[i] === '"') {
      const value = readQuoted();
      if (value !== "") terms.push({ kind: "text", value, negated });
      continue;
    }
    let word = "";
    while (i < text.length && !/\s/.test(text[i] as string) && text[i] !== '"') {
      word += text[i];
      i += 1;
    }
    const colon = word.indexOf(":");
    const key = colon > 0 ? word.slice(0, colon) : "";
    if (key !== "" && /^[A-Za-z_][\w.-]*$/.test(key)) {
      let value = word.slice(colon + 1);
      if (value === "" && text[i] === '"') value = readQuoted();
      terms.push({ kind: "filter", key, value, negated });
    } else {
      // A quote glued to a word (`foo"bar`) continues the word as text.
      if (text[i] === '"') word += readQuoted();
      if (word !== "") terms.push({ kind: "text", value: word, negated });
    }
  }
  return terms;
}

const STATUSES: Record<string, IssueStatus> = {
  unresolved: "unresolved",
  resolved: "resolved",
  ignored: "ignored",
  archived: "ignored",
  muted: "ignored",
};

const LEVELS = new Set(["fatal", "error", "warning", "info", "debug"]);

/** What the issue list filters by, read from a query. */
export type IssueSearch = {
  statuses: IncludeExclude<IssueStatus>;
  levels: IncludeExclude<string>;
  releases: IncludeExclude<string>;
  userKeys: IncludeExclude<string>;
  hasUser: boolean | null;
  hasRelease: boolean | null;
  text: IncludeExclude<string>;
  /** `environment:` values (the environment selector writes these). */
  environments: IncludeExclude<string>;
  /** Terms understood but not applied (no index answers them yet), as written. */
  notApplied: string[];
  /** Terms that are wrong (bad level, unknown `is:`), with why. */
  errors: string[];
};

const empty = <T>(): IncludeExclude<T> => ({ include: [], exclude: [] });

/** Longest filter value kept: releases stop at 200 characters, emails at 320. */
const MAX_VALUE_LENGTH = 320;

/**
 * Reads a query into filters. Without a query (`undefined`) the list
 * shows unresolved issues, as Sentry's does; an empty query shows all.
 */
export function parseIssueSearch(query: string | undefined): IssueSearch {
  const search: IssueSearch = {
    statuses: empty(),
    levels: empty(),
    releases: empty(),
    userKeys: empty(),
    hasUser: null,
    hasRelease: null,
    text: empty(),
    environments: empty(),
    notApplied: [],
    errors: [],
  };
  if (query === undefined) {
    search.statuses.include.push("unresolved");
    return search;
  }
  const terms = tokenizeSearch(query);
  if (terms.length > MAX_TERMS) {
    search.errors.push(`Only the first ${MAX_TERMS} terms of a search are read.`);
  }
  for (const term of terms.slice(0, MAX_TERMS)) {
    const into = <T>(list: IncludeExclude<T>, value: T) =>
      (term.negated ? list.exclude : list.include).push(value);
    if (term.value.length > MAX_VALUE_LENGTH) {
      search.errors.push(`A search term is longer than ${MAX_VALUE_LENGTH} characters.`);
      continue;
    }
    if (term.kind === "text") {
      into(search.text, term.value);
      continue;
    }
    const written = `${term.negated ? "!" : ""}${term.key}:${term.value}`;
    const key = term.key.toLowerCase();
    const value = term.value;
    if (value === "") {
      search.errors.push(`${term.key}: needs a value.`);
    } else if (key === "is") {
      const status = STATUSES[value.toLowerCase()];
      if (status) into(search.statuses, status);
      else if (["assigned", "unassigned", "for_review", "linked", "unlinked"].includes(value))
        search.notApplied.push(written);
      else search.errors.push(`is:${value} is not a status (unresolved, resolved, ignored).`);
    } else if (key === "level") {
      if (LEVELS.has(value.toLowerCase())) into(search.levels, value.toLowerCase());
      else
        search.errors.push(`level:${value} is not a level (fatal, error, warning, info, debug).`);
    } else if (key === "release") {
      into(search.releases, value);
    } else if (key === "user.email") {
      into(search.userKeys, `email:${value}`);
    } else if (key === "environment") {
      into(search.environments, value);
      search.notApplied.push(written);
    } else if (key === "has") {
      const has = !term.negated;
      if (value === "user") search.hasUser = has;
      else if (value === "release") search.hasRelease = has;
      else search.notApplied.push(written);
    } else {
      search.notApplied.push(written);
    }
  }
  return search;
}

/**
 * The query with its `environment:` terms replaced by `environment`
 * (none when null): what the environment selector submits.
 */
export function withEnvironment(query: string, environment: string | null): string {
  const kept = tokenizeSearch(query)
    .filter((t) => !(t.kind === "filter" && t.key.toLowerCase() === "environment"))
    .map(formatTerm);
  if (environment)
    kept.push(
      formatTerm({ kind: "filter", key: "environment", value: environment, negated: false }),
    );
  return kept.join(" ");
}

/** A term written back as the search box shows it (values with spaces or quotes quoted). */
export function formatTerm(term: SearchTerm): string {
  const quoted = /[\s"]/.test(term.value)
    ? `"${term.value.replace(/(["\\])/g, "\\$1")}"`
    : term.value;
  const bang = term.negated ? "!" : "";
  return term.kind === "filter" ? `${bang}${term.key}:${quoted}` : `${bang}${quoted}`;
}

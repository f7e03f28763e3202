/**
 * Sentry's issue search syntax, as its search bar and API write it
 * (docs.sentry.io/concepts/search/, "Query Syntax"): `key:value` filters,
 * `key:"a value"` quoted, `key:[a,b]` a list (any of), `!key:value`
 * negated, and any other word free text (`"two words"` one phrase). Keys
 * Sluice answers: `is:`, `level:`, `release:`, `user.email:`,
 * `environment:`, `has:`, and any other key as a tag (`browser.name:Chrome`,
 * `server_name:web-1`), as Sentry reads an unknown key as a custom tag.
 * Parsed once here for the API and the web list (packages/db answers it).
 */

/** Longest query read (the search box sends a few words). */
export const MAX_QUERY_LENGTH = 1_000;
/** Most terms read from one query; the rest are reported as ignored. */
const MAX_TERMS = 30;
/** Most values of one `key:[a,b,…]` list. */
const MAX_LIST_VALUES = 20;

export type SearchTerm =
  | { kind: "filter"; key: string; value: string; negated: boolean }
  | { kind: "text"; value: string; negated: boolean };

/** Values a condition must (`include`, any of) or must not (`exclude`, none of) take. */
export type IncludeExclude<T> = { include: T[]; exclude: T[] };

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

/** An issue's status as the issues table stores it. */
export type SearchStatus = "unresolved" | "resolved" | "ignored";

const STATUSES: Record<string, SearchStatus> = {
  unresolved: "unresolved",
  resolved: "resolved",
  ignored: "ignored",
  archived: "ignored",
  muted: "ignored",
};

const LEVELS = new Set(["fatal", "error", "warning", "info", "debug"]);

/**
 * Keys Sentry reads as issue or event properties, not tags, that Sluice
 * does not answer yet (docs.sentry.io/concepts/search/searchable-properties/
 * issues/): named as not applied rather than searched as tags.
 */
const UNANSWERED_KEYS = new Set([
  "age",
  "assigned",
  "assigned_or_suggested",
  "bookmarks",
  "event.timestamp",
  "firstseen",
  "lastseen",
  "timesseen",
  "times_seen",
  "firstrelease",
  "issue.category",
  "issue.priority",
  "issue.type",
  "subscribed",
  "error.type",
  "error.value",
  "error.handled",
  "error.unhandled",
  "message",
  "title",
]);

/** `key:value` over the issue's tag values (`issue_tag_values`). */
export type TagFilter = {
  key: string;
  /** Any of these values (`key:[a,b]` gives several). */
  values: string[];
  /** `!key:value`: the issue's events never had any of the values. */
  negated: boolean;
};

/** What the issue list filters by, read from a query. */
export type IssueSearch = {
  statuses: IncludeExclude<SearchStatus>;
  levels: IncludeExclude<string>;
  releases: IncludeExclude<string>;
  userKeys: IncludeExclude<string>;
  hasUser: boolean | null;
  hasRelease: boolean | null;
  text: IncludeExclude<string>;
  /** Tag terms, `environment:` among them (key `environment`). */
  tags: TagFilter[];
  /** `has:key` (include) and `!has:key` (exclude) for tag keys. */
  hasTags: IncludeExclude<string>;
  /** Terms understood but not applied, as written. */
  notApplied: string[];
  /** Terms that are wrong (bad level, unknown `is:`), with why. */
  errors: string[];
};

const empty = <T>(): IncludeExclude<T> => ({ include: [], exclude: [] });

/** Longest filter value kept: tag values stop at 200 characters, emails at 320. */
const MAX_VALUE_LENGTH = 320;
/** Longest tag key (Relay's bound, as event-tags.ts indexes them). */
const MAX_KEY_LENGTH = 200;

/** `[a, b]` as its values (Sentry's list syntax); a plain value as itself. */
function listValues(value: string): string[] {
  const list = /^\[(.*)\]$/.exec(value);
  if (!list) return [value];
  return (list[1] as string)
    .split(",")
    .map((v) => v.trim().replace(/^"(.*)"$/, "$1"))
    .filter((v) => v !== "");
}

/**
 * Reads a query into filters. Without a query (`undefined`) the list
 * shows unresolved issues, as Sentry's does; an empty query shows all.
 * Never throws: wrong terms land in `errors` (the caller answers 400),
 * terms it cannot answer in `notApplied`.
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
    tags: [],
    hasTags: empty(),
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
    const written = formatTerm(term);
    const key = term.key.toLowerCase();
    const value = term.value;
    const values = listValues(value);
    if (value === "" || values.length === 0) {
      search.errors.push(`${term.key}: needs a value.`);
    } else if (values.length > MAX_LIST_VALUES) {
      search.errors.push(`${term.key}: takes at most ${MAX_LIST_VALUES} values.`);
    } else if (key === "is") {
      for (const v of values) {
        const status = STATUSES[v.toLowerCase()];
        if (status) into(search.statuses, status);
        else if (["assigned", "unassigned", "for_review", "linked", "unlinked"].includes(v))
          search.notApplied.push(written);
        else search.errors.push(`is:${v} is not a status (unresolved, resolved, ignored).`);
      }
    } else if (key === "level") {
      for (const v of values) {
        if (LEVELS.has(v.toLowerCase())) into(search.levels, v.toLowerCase());
        else search.errors.push(`level:${v} is not a level (fatal, error, warning, info, debug).`);
      }
    } else if (key === "release") {
      for (const v of values) into(search.releases, v);
    } else if (key === "user.email") {
      for (const v of values) into(search.userKeys, `email:${v}`);
    } else if (key === "has") {
      for (const v of values) {
        if (v === "user") search.hasUser = !term.negated;
        else if (v === "release") search.hasRelease = !term.negated;
        else if (v.length > MAX_KEY_LENGTH) search.errors.push("A tag key is too long.");
        else into(search.hasTags, v);
      }
    } else if (
      UNANSWERED_KEYS.has(key) ||
      /^[<>=]/.test(value) ||
      values.some((v) => v.includes("*"))
    ) {
      // Comparisons (`times_seen:>10`) and wildcards need indexes Sluice lacks.
      search.notApplied.push(written);
    } else if (term.key.length > MAX_KEY_LENGTH) {
      search.errors.push("A tag key is too long.");
    } else {
      // Tag keys are case-sensitive (Sentry's `tags[key]`), `environment` as written.
      search.tags.push({
        key: key === "environment" ? "environment" : term.key,
        values,
        negated: term.negated,
      });
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

import { describe, expect, it } from "vitest";
import { formatTerm, parseIssueSearch, tokenizeSearch, withEnvironment } from "./issue-search.ts";

describe("tokenizeSearch", () => {
  it("reads filters, negation, quotes and free text", () => {
    expect(
      tokenizeSearch('is:unresolved !level:info release:"my app 1.0" TypeError "two words"'),
    ).toEqual([
      { kind: "filter", key: "is", value: "unresolved", negated: false },
      { kind: "filter", key: "level", value: "info", negated: true },
      { kind: "filter", key: "release", value: "my app 1.0", negated: false },
      { kind: "text", value: "TypeError", negated: false },
      { kind: "text", value: "two words", negated: false },
    ]);
  });

  it("keeps URLs and words with colons that are not keys as text", () => {
    expect(tokenizeSearch("http://x/y :nokey")).toEqual([
      { kind: "filter", key: "http", value: "//x/y", negated: false },
      { kind: "text", value: ":nokey", negated: false },
    ]);
  });

  it("reads escaped quotes, a lone bang and an unterminated quote without throwing", () => {
    expect(tokenizeSearch('"say \\"hi\\"" ! "open')).toEqual([
      { kind: "text", value: 'say "hi"', negated: false },
      { kind: "text", value: "!", negated: false },
      { kind: "text", value: "open", negated: false },
    ]);
  });

  it("round-trips through formatTerm", () => {
    const query = '!release:"a b" user.email:x@y.z "quoted \\"word\\"" !plain';
    const again = tokenizeSearch(tokenizeSearch(query).map(formatTerm).join(" "));
    expect(again).toEqual(tokenizeSearch(query));
  });
});

describe("parseIssueSearch", () => {
  it("shows unresolved issues without a query, and all with an empty one", () => {
    expect(parseIssueSearch(undefined).statuses).toEqual({ include: ["unresolved"], exclude: [] });
    expect(parseIssueSearch("").statuses).toEqual({ include: [], exclude: [] });
  });

  it("maps Sentry's keys to filters", () => {
    const s = parseIssueSearch(
      "is:resolved !is:ignored level:ERROR !release:1.0 user.email:a@b.c has:user !has:release boom !bang",
    );
    expect(s.statuses).toEqual({ include: ["resolved"], exclude: ["ignored"] });
    expect(s.levels).toEqual({ include: ["error"], exclude: [] });
    expect(s.releases).toEqual({ include: [], exclude: ["1.0"] });
    expect(s.userKeys).toEqual({ include: ["email:a@b.c"], exclude: [] });
    expect(s.hasUser).toBe(true);
    expect(s.hasRelease).toBe(false);
    expect(s.text).toEqual({ include: ["boom"], exclude: ["bang"] });
    expect(s.errors).toEqual([]);
    expect(s.notApplied).toEqual([]);
  });

  it("reads environment:, tags, lists, negation and has:key as tag filters", () => {
    const s = parseIssueSearch(
      "Environment:prod browser.name:Chrome !server_name:web-1 release:[1.0,2.0] os.name:[Linux,Mac] has:stack !has:device",
    );
    expect(s.tags).toEqual([
      { key: "environment", values: ["prod"], negated: false },
      { key: "browser.name", values: ["Chrome"], negated: false },
      { key: "server_name", values: ["web-1"], negated: true },
      { key: "os.name", values: ["Linux", "Mac"], negated: false },
    ]);
    expect(s.releases.include).toEqual(["1.0", "2.0"]);
    expect(s.hasTags).toEqual({ include: ["stack"], exclude: ["device"] });
    expect(s.notApplied).toEqual([]);
    expect(s.errors).toEqual([]);
  });

  it("keeps tag keys case-sensitive and quoted values whole", () => {
    const s = parseIssueSearch('Custom.Key:"a b" url:http://x/y');
    expect(s.tags).toEqual([
      { key: "Custom.Key", values: ["a b"], negated: false },
      { key: "url", values: ["http://x/y"], negated: false },
    ]);
  });

  it("names what it cannot apply and what is wrong", () => {
    const s = parseIssueSearch(
      "times_seen:>10 age:-24h browser:Chr* is:assigned is:nope level:loud level: x:[]",
    );
    expect(s.notApplied).toEqual(["times_seen:>10", "age:-24h", "browser:Chr*", "is:assigned"]);
    expect(s.errors).toHaveLength(4);
    expect(s.tags).toEqual([]);
  });

  it("bounds tag keys and list sizes", () => {
    expect(parseIssueSearch(`${"k".repeat(201)}:v`).errors).toEqual(["A tag key is too long."]);
    const many = `k:[${Array.from({ length: 21 }, (_, i) => `v${i}`).join(",")}]`;
    expect(parseIssueSearch(many).errors).toHaveLength(1);
  });

  it("bounds the number of terms read", () => {
    const s = parseIssueSearch(Array.from({ length: 50 }, (_, i) => `w${i}`).join(" "));
    expect(s.text.include).toHaveLength(30);
    expect(s.errors).toHaveLength(1);
  });
});

describe("withEnvironment", () => {
  it("replaces the environment terms", () => {
    expect(withEnvironment("is:unresolved environment:dev boom", "prod")).toBe(
      "is:unresolved boom environment:prod",
    );
    expect(withEnvironment("environment:dev", null)).toBe("");
  });
});

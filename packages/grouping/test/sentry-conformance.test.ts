import { readFileSync } from "node:fs";
import { normalizeEvent } from "@sluice/protocol";
import { describe, expect, it } from "vitest";
import { hashEvent, parseGroupingRules } from "../src/index.ts";

/**
 * Sentry's own grouping test data (getsentry/sentry tests/sentry/grouping/:
 * inputs from grouping_inputs/, expected hashes from the newstyle@2023_01_11
 * snapshots), run through Sluice's grouping. An input matches when Sluice's
 * first hash is Sentry's first and both give the same set of hashes.
 */
const dir = new URL("./fixtures/sentry-grouping/", import.meta.url);
type Case = { input: string; snapshot: string; hashes: Record<string, string> };
const { cases } = JSON.parse(readFileSync(new URL("expected.json", dir), "utf8")) as {
  cases: Case[];
};
const meta = { eventId: "a".repeat(32), timestamp: new Date(0), receivedAt: new Date(0) };

/** Inputs that still differ from Sentry, each with why. */
const KNOWN_DIFFERENCES: Record<string, string> = {
  "checksum-no-regex-match":
    "Sentry also looks issues up by a non-hex checksum verbatim; Sluice's hashes are always 32 hex digits (its md5, Sentry's hashed-checksum, matches)",
};

type SentryRule = { matchers: [string, string][]; fingerprint: string[] };

/** Sentry's test inputs carry project rules as `_fingerprinting_rules` (JSON) and `_grouping.enhancements` (text). */
function projectRules(raw: Record<string, unknown>) {
  const quote = (s: string) => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  const fingerprintingRules = ((raw._fingerprinting_rules ?? []) as SentryRule[])
    .map(
      (r) =>
        `${r.matchers.map(([k, v]) => `${k}:${quote(v)}`).join(" ")} -> ${r.fingerprint.map(quote).join(" ")}`,
    )
    .join("\n");
  const groupingEnhancements = (raw._grouping as { enhancements?: string } | undefined)
    ?.enhancements;
  const parsed = parseGroupingRules({ fingerprintingRules, groupingEnhancements });
  expect(parsed.errors).toEqual([]);
  return parsed.rules;
}

function sluiceHashes(name: string): string[] {
  const raw = JSON.parse(readFileSync(new URL(`inputs/${name}.json`, dir), "utf8"));
  return hashEvent(normalizeEvent(raw, meta), projectRules(raw)).map((h) => h.hash);
}

function sameGrouping(got: string[], expected: string[]): boolean {
  return (
    got[0] === expected[0] &&
    new Set(got).size === new Set(expected).size &&
    expected.every((h) => got.includes(h))
  );
}

describe("Sentry grouping conformance (newstyle@2023_01_11)", () => {
  it("gives Sentry's hashes for Sentry's inputs, except the known differences", () => {
    const mismatches: string[] = [];
    for (const c of cases) {
      const expected = Object.values(c.hashes);
      const got = sluiceHashes(c.input);
      if (!sameGrouping(got, expected)) {
        mismatches.push(`${c.input}: Sentry ${expected.join(",")}, Sluice ${got.join(",")}`);
      }
    }
    const matched = cases.length - mismatches.length;
    console.log(
      `grouping conformance: ${matched}/${cases.length}${mismatches.map((m) => `\n  ${m}`).join("")}`,
    );
    const differing = mismatches.map((m) => m.slice(0, m.indexOf(":"))).sort();
    expect(differing).toEqual(Object.keys(KNOWN_DIFFERENCES).sort());
  });

  it("covers at least 26 of Sentry's inputs", () => {
    expect(cases.length).toBeGreaterThanOrEqual(26);
  });
});

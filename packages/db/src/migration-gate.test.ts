import { beforeAll, describe, expect, it } from "vitest";
import { compareReleases, gatedChanges, requiredRelease } from "./migration-gate.ts";
import { loadSqlParser } from "./sql-parser.ts";

describe("the version gate's rules", () => {
  beforeAll(loadSqlParser);

  it("orders releases, a -dev before its release and after the one before", () => {
    const sorted = ["0.4.0", "0.1.0", "0.4.0-dev", "0.3.0 or older", "0.10.0", "0.3.1"].sort(
      compareReleases,
    );
    expect(sorted).toEqual(["0.1.0", "0.3.0 or older", "0.3.1", "0.4.0-dev", "0.4.0", "0.10.0"]);
  });

  it("finds what a file removes or narrows, and nothing in an additive file", () => {
    expect(
      gatedChanges({
        sql: `DROP TABLE IF EXISTS a, b;
              ALTER TABLE c DROP COLUMN IF EXISTS d, ALTER COLUMN e TYPE bigint, ALTER COLUMN f SET NOT NULL;
              ALTER TABLE g RENAME COLUMN h TO i;`,
      }),
    ).toEqual([
      { kind: "drop", table: "a" },
      { kind: "drop", table: "b" },
      { kind: "drop", table: "c", column: "d" },
      { kind: "type change", table: "c", column: "e" },
      { kind: "set not null", table: "c", column: "f" },
      { kind: "rename", table: "g", column: "h" },
    ]);
    expect(
      gatedChanges({
        sql: `CREATE TABLE IF NOT EXISTS x (id bigint);
              ALTER TABLE x ADD COLUMN IF NOT EXISTS y text;
              CREATE INDEX IF NOT EXISTS x_y ON x (y);
              DROP INDEX IF EXISTS x_y;`,
      }),
    ).toEqual([]);
  });

  it("waits for the release that stopped using each change, or this code's own release", () => {
    const gate = {
      deprecations: [
        { table: "a", stoppedIn: "0.2.0" },
        { table: "c", column: "d", stoppedIn: "0.3.0" },
      ],
      release: "0.5.0-dev",
      ageOutMs: 1,
      unregisteredAgeOutMs: 1,
    };
    expect(requiredRelease([{ kind: "drop", table: "a" }], gate)).toBe("0.2.0");
    expect(
      requiredRelease(
        [
          { kind: "drop", table: "a" },
          { kind: "drop", table: "c", column: "d" },
        ],
        gate,
      ),
    ).toBe("0.3.0");
    expect(requiredRelease([{ kind: "drop", table: "zz" }], gate)).toBe("0.5.0-dev");
  });
});

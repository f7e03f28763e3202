import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { tableLocksOf } from "./migration-table-locks.ts";

const migration = (name: string) =>
  readFileSync(new URL(`../../../migrations/${name}`, import.meta.url), "utf8");

describe("tableLocksOf", () => {
  it("lists migration 0006's tables in the order it touches them", async () => {
    expect(await tableLocksOf(migration("0006_project_grouping_rules.sql"))).toEqual([
      { table: '"projects"', mode: "SHARE ROW EXCLUSIVE" },
      { table: '"issues"', mode: "ACCESS EXCLUSIVE" },
      { table: '"events"', mode: "ACCESS EXCLUSIVE" },
    ]);
  });

  it("keeps each table's strongest mode and never a stronger one than the statement takes", async () => {
    const sql = `
      CREATE TABLE IF NOT EXISTS t (id bigint REFERENCES app."Orgs" (id), FOREIGN KEY (id) REFERENCES u (id));
      ALTER TABLE u ADD CONSTRAINT u_v FOREIGN KEY (v) REFERENCES v (id) NOT VALID;
      ALTER TABLE u VALIDATE CONSTRAINT u_v;
      ALTER TABLE v ADD CONSTRAINT v_c CHECK (id > 0) NOT VALID;
      CREATE INDEX IF NOT EXISTS t_id ON t (id);
      CREATE INDEX CONCURRENTLY IF NOT EXISTS w_id ON w (id);
      ALTER TABLE w SET (fillfactor = 90);
      ALTER TABLE u ADD COLUMN IF NOT EXISTS z bigint;`;
    expect(await tableLocksOf(sql)).toEqual([
      { table: '"app"."Orgs"', mode: "SHARE ROW EXCLUSIVE" },
      { table: '"u"', mode: "ACCESS EXCLUSIVE" },
      { table: '"v"', mode: "ACCESS EXCLUSIVE" },
      { table: '"t"', mode: "SHARE" },
    ]);
  });
});

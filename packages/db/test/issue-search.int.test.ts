import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IssueSearchQuery, type IssueSort, searchIssues } from "../src/queries/web-pages.ts";
import {
  createTestDatabase,
  migrateTestDatabase,
  openTestPool,
  type TestDatabase,
} from "./test-database.ts";

const none = { include: [], exclude: [] };

/** A search of every unresolved issue of `projectIds`, as the API's default list asks it. */
const unresolvedOf = (projectIds: number[]): IssueSearchQuery => ({
  projectIds,
  statuses: { include: ["unresolved"], exclude: [] },
  levels: none,
  releases: none,
  userKeys: none,
  hasUser: null,
  hasRelease: null,
  text: none,
});

describe("searchIssues over several projects", () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    await migrateTestDatabase(db.url);
    pool = openTestPool(db.url, 2);
    await pool.query("INSERT INTO organizations (id, slug, name) VALUES (1, 'o', 'o')");
    await pool.query(`INSERT INTO projects (id, organization_id, slug, name)
                      VALUES (1, 1, 'a', 'a'), (2, 1, 'b', 'b'), (3, 1, 'c', 'c')`);
    // 60 issues, unevenly over the projects, with ties in both sort columns
    // (ordered by id then) and a few resolved or merged ones left out.
    await pool.query(`INSERT INTO issues (project_id, short_id, title, status, first_seen, last_seen,
                                          times_seen, merged_into_id)
      SELECT CASE WHEN n % 6 < 3 THEN 1 WHEN n % 6 < 5 THEN 2 ELSE 3 END, n, 'issue ' || n,
             CASE WHEN n % 11 = 0 THEN 'resolved' ELSE 'unresolved' END,
             timestamptz '2026-11-01' + n * interval '1 hour',
             timestamptz '2026-11-20' + ((n * 7) % 23) * interval '1 minute',
             (n * 13) % 17, CASE WHEN n % 19 = 0 THEN 1 END
        FROM generate_series(1, 60) AS n`);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it.each<[IssueSort, string]>([
    ["date", "last_seen"],
    ["freq", "times_seen"],
  ])("pages them by %s in the order of one sort over all of them", async (sort, column) => {
    const expected = (
      await pool.query(
        `SELECT id FROM issues WHERE status = 'unresolved' AND merged_into_id IS NULL
          ORDER BY ${column} DESC, id DESC`,
      )
    ).rows.map((r) => Number(r.id));
    expect(expected.length).toBeGreaterThan(40);
    const paged: number[] = [];
    for (let offset = 0; offset < expected.length + 7; offset += 7) {
      const page = await searchIssues(pool, unresolvedOf([1, 2, 3]), sort, 7, offset);
      paged.push(...page.map((i) => i.id));
    }
    expect(paged).toEqual(expected);
    const two = await searchIssues(pool, unresolvedOf([3, 1]), sort, 100, 0);
    expect(two.map((i) => i.projectId).sort()).not.toContain(2);
    expect(two).toHaveLength(
      (
        await pool.query(
          `SELECT count(*)::int AS n FROM issues WHERE project_id IN (1, 3)
              AND status = 'unresolved' AND merged_into_id IS NULL`,
        )
      ).rows[0].n,
    );
  });
});

import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database, ping, withTransaction } from "../src/database.ts";
import { organizations } from "../src/schema.ts";
import { createTestDatabase, migrateTestDatabase, type TestDatabase } from "./test-database.ts";

describe("withTransaction", () => {
  let test: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    test = await createTestDatabase();
    await migrateTestDatabase(test.url);
    db = createDatabase(
      test.url,
      { max: 3, applicationName: "with-transaction-test", connectionTimeoutMs: 5_000 },
      () => {},
    );
  });
  afterAll(async () => {
    await db?.close();
    await test?.drop();
  });

  const count = async (slug: string) =>
    Number(
      (await db.pool.query("SELECT count(*) AS n FROM organizations WHERE slug = $1", [slug]))
        .rows[0].n,
    );

  it("commits what work wrote, through drizzle and the raw client on one connection", async () => {
    const pids = await withTransaction(db, async (tx) => {
      await tx.client.query("INSERT INTO organizations (slug, name) VALUES ('raw', 'raw')");
      // Drizzle sees the raw client's uncommitted row: the same connection, the same transaction.
      const seen = await tx.orm.select().from(organizations).where(sql`slug = 'raw'`);
      expect(seen).toHaveLength(1);
      await tx.orm.insert(organizations).values({ slug: "orm", name: "orm" });
      const raw = await tx.client.query("SELECT pg_backend_pid() AS pid");
      const orm = await tx.orm.execute(sql`SELECT pg_backend_pid() AS pid`);
      return [raw.rows[0].pid, orm.rows[0]?.pid];
    });
    expect(pids[0]).toBe(pids[1]);
    expect(await count("raw")).toBe(1);
    expect(await count("orm")).toBe(1);
  });

  it("rolls back everything and rethrows when work throws", async () => {
    const failure = new Error("work failed");
    await expect(
      withTransaction(db.pool, async (tx) => {
        await tx.client.query("INSERT INTO organizations (slug, name) VALUES ('gone', 'gone')");
        await tx.orm.insert(organizations).values({ slug: "gone2", name: "gone2" });
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await count("gone")).toBe(0);
    expect(await count("gone2")).toBe(0);
    expect(db.pool.idleCount + db.pool.waitingCount).toBe(db.pool.totalCount);
  });

  it("sets its options for that transaction only", async () => {
    const inside = await withTransaction(
      db,
      async ({ client }) =>
        (
          await client.query(
            `SELECT current_setting('synchronous_commit') AS sync,
                    current_setting('lock_timeout') AS lock,
                    current_setting('statement_timeout') AS statement`,
          )
        ).rows[0],
      { synchronousCommit: false, lockTimeoutMs: 2_000, statementTimeoutMs: 30_000.7 },
    );
    expect(inside).toEqual({ sync: "off", lock: "2s", statement: "30s" });
    const plain = await withTransaction(
      db,
      async ({ client }) =>
        (await client.query("SELECT current_setting('synchronous_commit') AS sync")).rows[0],
    );
    expect(plain).toEqual({ sync: "on" });
  });

  it("refuses a timeout that is not a number of ms before it connects", async () => {
    await expect(withTransaction(db, async () => {}, { lockTimeoutMs: -1 })).rejects.toThrow(
      RangeError,
    );
  });
});

describe("ping", () => {
  it("resolves while the database answers and throws when it does not", async () => {
    const test = await createTestDatabase();
    const db = createDatabase(
      test.url,
      { max: 1, applicationName: "ping-test", connectionTimeoutMs: 2_000 },
      () => {},
    );
    try {
      await expect(ping(db)).resolves.toBeUndefined();
      await db.close();
      await expect(ping(db)).rejects.toThrow();
    } finally {
      await test.drop();
    }
  });
});

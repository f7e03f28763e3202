import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { promisify, stripVTControlCharacters } from "node:util";
import { createDatabase, type Database } from "@sluice/db";
import { createTestDatabase, type TestDatabase } from "@sluice/db/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.ts";

const SECRET = "s3cret-payload-7f1e";
const run = promisify(execFile);
const loggerModule = new URL("../src/logger.ts", import.meta.url).pathname;

/** Logs `err` at error level through Sluice's logger; returns the JSON line. */
function logged(err: unknown): { text: string; json: Record<string, unknown> } {
  let text = "";
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += chunk;
      done();
    },
  });
  createLogger("info", "test", { destination }).error({ err, events: 3 }, "it failed");
  return { text, json: JSON.parse(text) };
}

describe("error logs", () => {
  let database: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    database = await createTestDatabase();
    db = createDatabase(
      database.url,
      { max: 2, applicationName: "test", connectionTimeoutMs: 2_000 },
      () => {},
    );
    await db.pool.query(
      "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL CHECK (length(body) < 5))",
    );
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  const caught = (work: Promise<unknown>) =>
    work.then(
      () => {
        throw new Error("expected the query to fail");
      },
      (error: unknown) => error,
    );

  it("carry a pg DatabaseError's SQLSTATE and constraint, never its SQL, parameters or row", async () => {
    const error = await caught(
      db.pool.query("INSERT INTO notes (id, body) VALUES ($1, $2)", [1, SECRET]),
    );
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).toContain(SECRET);
    const { text, json } = logged(error);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("INSERT");
    expect(text).not.toMatch(/Failing row/);
    expect(json.events).toBe(3);
    expect(json.err).toMatchObject({
      type: "DatabaseError",
      code: "23514",
      routine: expect.any(String),
      table: "notes",
      constraint: "notes_body_check",
      message: 'new row for relation "notes" violates check constraint "notes_body_check"',
    });
  });

  it("log a drizzle query error as its cause, without the statement or its parameters", async () => {
    const error = await caught(db.orm.execute(sql`SELECT ${SECRET}::uuid AS id`));
    expect((error as Error).message).toContain("Failed query");
    expect((error as Error).message).toContain(SECRET);
    const { text, json } = logged(error);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("SELECT");
    expect(text).not.toContain("params");
    expect(json.err).toMatchObject({
      type: "DatabaseError",
      code: "22P02",
      wrappedBy: "DrizzleQueryError",
      message: 'invalid input syntax for type uuid: "…"',
    });
    expect((json.err as { stack: string }).stack).toMatch(
      /^DatabaseError: invalid input[^\n]*\n\s+at /,
    );
  });

  it("never carry a client's connection settings", async () => {
    const error = Object.assign(new Error("Connection terminated unexpectedly"), {
      client: { connectionParameters: { password: SECRET, user: "postgres" } },
      password: SECRET,
    });
    const { text } = logged(error);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("password");
    expect(text).toContain("Connection terminated unexpectedly");
  });

  it("are readable lines on a terminal and JSON otherwise", async () => {
    const program = `import(${JSON.stringify(loggerModule)}).then((m) => m.createLogger("info", "test").info({ events: 3 }, "hello"))`;
    const node = [process.execPath, "--import", "tsx", "-e", program];
    const piped = await run(node[0] as string, node.slice(1));
    expect(JSON.parse(piped.stderr)).toMatchObject({ msg: "hello", events: 3, role: "test" });
    // util-linux `script` runs the command on a pseudo-terminal (stdout and stderr).
    const quoted = node.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
    const tty = await run("script", ["-qec", quoted, "/dev/null"]);
    const text = stripVTControlCharacters(tty.stdout);
    expect(text).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hello\r?\n\s+role: "test"\r?\n\s+events: 3/,
    );
    expect(text).not.toContain('"level"');
  });
});

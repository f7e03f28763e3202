import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTestDatabase, type TestDatabase } from "@sluice/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;
const sluiceBin = join(root, "apps/server/bin/sluice.js");
const clients = new URL("./clients/", import.meta.url).pathname;

/** The environment of a fresh shell: no database or Redis configured. */
function bareEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const name of ["DATABASE_URL", "REDIS_URL", "PORT", "SLUICE_URL"])
    if (!(name in extra)) delete env[name];
  return env;
}

function waitForOutput(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} in output:\n${output}`)),
      timeoutMs,
    );
    child.stdout?.on("data", (chunk) => {
      output += chunk;
      const match = output.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.once("exit", (code) =>
      reject(new Error(`exited with ${code} before ${pattern}:\n${output}`)),
    );
  });
}

const bundle = join(root, "apps/server/dist/sluice.mjs");

describe.each([
  ["from the sources through tsx", sluiceBin],
  ["as the bundle that deployments run (npm run build)", bundle],
])("sluice serve with no configuration (embedded Postgres, in-process jobs), %s", (_, bin) => {
  let dataDir: string;
  let child: ChildProcess;
  let dsn: string;
  let stderr = "";
  let stdout = "";
  const port = 18000 + Math.floor(Math.random() * 2000);
  beforeAll(async () => {
    if (bin === bundle) await run("npm", ["run", "build"], { cwd: root });
    dataDir = mkdtempSync(join(tmpdir(), "sluice-embedded-"));
    chmodSync(dataDir, 0o755);
    child = spawn(process.execPath, [bin, "serve"], {
      cwd: root,
      env: bareEnv({
        SLUICE_DATA_DIR: dataDir,
        PORT: String(port),
        SLUICE_METRICS_PORT: "0",
        LOG_LEVEL: "warn",
        SLUICE_DRAIN_DELAY_MS: "200",
      }),
      // Its own process group, so the test can press Ctrl-C as a terminal does.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    child.stdout?.on("data", (chunk) => {
      stdout += chunk;
    });
    dsn = (
      await waitForOutput(child, /(http:\/\/[0-9a-f]{32}@localhost:\d+\/\d+)/, 60_000)
    )[1] as string;
  });
  afterAll(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
    try {
      const pid = Number(
        readFileSync(join(dataDir, "postgres/postmaster.pid"), "utf8").split("\n")[0],
      );
      if (pid > 0) process.kill(pid, "SIGKILL");
    } catch {
      // No cluster left running.
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("prints a DSN that a real SDK sends to, and the API lists the grouped issues", async () => {
    expect(dsn).toContain(`@localhost:${port}/1`);
    await run(process.execPath, [`${clients}node-client.mjs`, dsn], { timeout: 30_000 });
    const { stdout } = await run(process.execPath, [bin, "tokens", "create", "--json"], {
      env: bareEnv({ SLUICE_DATA_DIR: dataDir, LOG_LEVEL: "warn" }),
    });
    const { token } = JSON.parse(stdout) as { token: string };
    expect(token).toMatch(/^sntryu_[0-9a-f]{64}$/);
    let issues: { title: string; count: string }[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const response = await fetch(
        `http://127.0.0.1:${port}/api/0/projects/sluice/default/issues/`,
        {
          headers: { Authorization: `Bearer ${token}` },
        },
      );
      issues = (await response.json()) as typeof issues;
      if (issues.find((i) => i.title === "Error: same error every time")?.count === "5") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(issues.find((i) => i.title === "Error: same error every time")?.count).toBe("5");
    expect(issues.filter((i) => i.title === "Error: thrown at two sites")).toHaveLength(2);
  });

  it("prints a link to create the first owner, as the database has no users", async () => {
    const line = new RegExp(
      `Create the first owner \\(sign-in account\\) here:\\n  http://localhost:${port}/auth/setup/[A-Za-z0-9_-]+/`,
    );
    for (let i = 0; i < 50 && !line.test(stdout); i++) await new Promise((r) => setTimeout(r, 100));
    expect(stdout).toMatch(line);
  });

  it("stops on Ctrl-C (SIGINT to its whole process group): drains, closes the pool before Postgres, exits 0, and logs nothing", async () => {
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    stderr = "";
    process.kill(-(child.pid as number), "SIGINT");
    expect(await exited).toBe(0);
    expect(stderr, stderr).not.toMatch(
      /terminating connection|57P01|password|connectionParameters/,
    );
    expect(stderr.length).toBeLessThan(500);
    expect(existsSync(join(dataDir, "postgres/postmaster.pid"))).toBe(false);
  });
});

describe("sluice serve with the embedded Postgres, stopped by a second Ctrl-C", () => {
  it("exits 1 at once, and its Postgres still shuts down", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sluice-embedded-"));
    chmodSync(dataDir, 0o755);
    const child = spawn(process.execPath, [sluiceBin, "serve"], {
      cwd: root,
      env: bareEnv({
        SLUICE_DATA_DIR: dataDir,
        PORT: "0",
        SLUICE_METRICS_PORT: "0",
        LOG_LEVEL: "warn",
        SLUICE_DRAIN_DELAY_MS: "10000",
      }),
      detached: true,
      stdio: ["ignore", "pipe", "ignore"],
    });
    const pidFile = join(dataDir, "postgres/postmaster.pid");
    try {
      await waitForOutput(child, /DSN for organization/, 60_000);
      // The DSN is printed just before the signal handlers are installed.
      await new Promise((r) => setTimeout(r, 2_000));
      expect(existsSync(pidFile)).toBe(true);
      const exited = new Promise<number | null>((resolve) =>
        child.once("exit", (code) => resolve(code)),
      );
      process.kill(-(child.pid as number), "SIGINT");
      await new Promise((r) => setTimeout(r, 300));
      process.kill(-(child.pid as number), "SIGINT");
      expect(await exited).toBe(1);
      const deadline = Date.now() + 10_000;
      while (existsSync(pidFile) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      try {
        const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
        if (pid > 0) process.kill(pid, "SIGKILL");
      } catch {
        // No cluster left running.
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("sluice commands", () => {
  it("runs as npx sluice from the root of the checkout", async () => {
    const { stdout } = await run("npx", ["sluice", "--help"], { cwd: root, env: bareEnv({}) });
    expect(stdout).toContain("sluice serve [--role=all|ingest|api|worker|alerts[,...]]");
  });

  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());
  const env = () =>
    bareEnv({ DATABASE_URL: db.url, SLUICE_URL: "https://sluice.example.com", LOG_LEVEL: "warn" });

  it("creates a project with a DSN, and prints it as JSON", async () => {
    const { stdout } = await run(
      process.execPath,
      [sluiceBin, "projects", "create", "web", "--org", "acme", "--json"],
      { env: env() },
    );
    const project = JSON.parse(stdout);
    expect(project).toEqual({
      id: expect.stringMatching(/^\d+$/),
      slug: "web",
      organization: "acme",
      dsn: expect.stringMatching(
        new RegExp(`^https://[0-9a-f]{32}@sluice\\.example\\.com/${project.id}$`),
      ),
    });
  });

  it("creates users with a password from standard input and tokens of both kinds, and lists the tokens", async () => {
    const create = spawnSync(
      process.execPath,
      [
        sluiceBin,
        "users",
        "create",
        "--email",
        "Ops@Acme.example",
        "--org",
        "acme",
        "--role",
        "owner",
        "--password-stdin",
        "--json",
      ],
      { env: env(), input: "a long enough password\n", encoding: "utf8" },
    );
    expect(create.status, create.stderr).toBe(0);
    expect(JSON.parse(create.stdout)).toMatchObject({
      role: "owner",
      created: true,
      setPasswordLink: null,
    });
    const badRole = spawnSync(
      process.execPath,
      [sluiceBin, "users", "create", "--email", "x@acme.example", "--role", "god"],
      { env: env(), encoding: "utf8" },
    );
    expect(badRole.status).toBe(2);
    const orgToken = await run(
      process.execPath,
      [sluiceBin, "tokens", "create", "--org", "acme", "--label", "ci"],
      { env: env() },
    );
    expect(orgToken.stdout.trim()).toMatch(/^sntrys_[A-Za-z0-9+/=]+_[A-Za-z0-9+/]+$/);
    await run(process.execPath, [sluiceBin, "tokens", "create", "--label", "admin"], {
      env: env(),
    });
    const list = await run(process.execPath, [sluiceBin, "tokens", "list", "--json"], {
      env: env(),
    });
    const tokens = JSON.parse(list.stdout) as {
      kind: string;
      owner: string | null;
      label: string;
    }[];
    expect(tokens.find((t) => t.label === "ci")).toMatchObject({
      kind: "organization",
      owner: "acme",
    });
    expect(tokens.find((t) => t.label === "admin")).toMatchObject({
      kind: "instance-admin",
      owner: null,
    });
  });

  it("shows migration status", async () => {
    const { stdout } = await run(process.execPath, [sluiceBin, "migrate", "status"], {
      env: env(),
    });
    expect(stdout).toMatch(/^applied\s+0001_init\.sql/m);
    expect(stdout).toContain("lock: free");
  });

  it("plans nothing on a migrated database, and lints every migration clean", async () => {
    const plan = await run(process.execPath, [sluiceBin, "migrate", "plan"], { env: env() });
    expect(plan.stdout.trim()).toBe("nothing to apply");
    const lint = await run(process.execPath, [sluiceBin, "migrate", "lint"], { env: env() });
    expect(lint.stdout.trim()).toBe("migrations: no findings");
  });

  it("prints a database error without its SQL or parameters", async () => {
    // Random hex does not compress: a slug this long cannot fit a btree entry.
    const slug = randomBytes(4000).toString("hex");
    const failure = await run(
      process.execPath,
      [sluiceBin, "projects", "create", "web", "--org", slug],
      { env: env() },
    ).catch((error) => error);
    expect(failure.code).toBe(1);
    expect(failure.stderr).toMatch(/^sluice: index row size \d+ exceeds/);
    expect(failure.stderr).not.toContain(slug.slice(0, 64));
    expect(failure.stderr).not.toMatch(/insert into|params/i);
    expect(failure.stderr.length).toBeLessThan(500);
  });

  it("refuses bad configuration with every problem listed and exit code 2", async () => {
    const failure = await run(process.execPath, [sluiceBin, "serve"], {
      env: bareEnv({ DATABASE_URL: "mysql://nope", PORT: "99999", REDIS_URL: "http://x" }),
    }).catch((error) => error);
    expect(failure.code).toBe(2);
    expect(failure.stderr).toContain("invalid configuration");
    expect(failure.stderr).toContain("DATABASE_URL: must be a postgres:// URL");
    expect(failure.stderr).toContain("REDIS_URL: must be a redis:// URL");
    expect(failure.stderr).toMatch(/PORT: /);
  });

  it("says the port is taken, and exits 1, when another process listens on it", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = String((holder.address() as AddressInfo).port);
    try {
      const failure = await run(process.execPath, [sluiceBin, "serve", "--port", port], {
        env: {
          ...env(),
          HOST: "127.0.0.1",
          SLUICE_METRICS_PORT: "0",
          REDIS_URL: "redis://127.0.0.1:6379",
        },
        timeout: 30_000,
      }).catch((error) => error);
      expect(failure.code).toBe(1);
      expect(failure.stderr).toContain(`sluice: port ${port} on 127.0.0.1 is already in use`);
    } finally {
      holder.close();
    }
  });

  it("says the metrics port is taken, and exits 1", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = String((holder.address() as AddressInfo).port);
    try {
      const failure = await run(process.execPath, [sluiceBin, "serve", "--port", "0"], {
        env: {
          ...env(),
          HOST: "127.0.0.1",
          SLUICE_METRICS_PORT: port,
          REDIS_URL: "redis://127.0.0.1:6379",
        },
        timeout: 30_000,
      }).catch((error) => error);
      expect(failure.code).toBe(1);
      expect(failure.stderr).toContain(
        `sluice: metrics port ${port} on 127.0.0.1 is already in use (set SLUICE_METRICS_PORT)`,
      );
    } finally {
      holder.close();
    }
  });
});

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  createApiToken,
  EditedMigrationError,
  ensureMigrationTables,
  findOrganization,
  listAllApiTokens,
  listFailedEvents,
  readMigrationFiles,
  readMigrationLock,
  readMigrationState,
} from "@sluice/db";
import {
  DEFAULT_SCOPES,
  hashApiToken,
  newApiToken,
  newOrganizationToken,
  ORGANIZATION_TOKEN_SCOPES,
} from "./accounts/auth-tokens.ts";
import { isOrganizationRole } from "./accounts/roles.ts";
import { createBackup, RestoreRefused, restoreBackup } from "./backup/backup.ts";
import { createProjectWithKey } from "./commands/default-project.ts";
import {
  CommandError,
  createUserCommand,
  firstOwnerLink,
  resetPasswordCommand,
  setSuperuserCommand,
} from "./commands/users.ts";
import { verifyBlobs } from "./commands/verify-blobs.ts";
import { type Config, printableSettings, readConfig } from "./config.ts";
import { environmentWithConfigFile, reloadConfig } from "./config-file.ts";
import { liveNodes, serializeNode } from "./fleet-nodes.ts";
import { createLogger, serializeError } from "./logger.ts";
import { retentionRunCommand, retentionSetCommand } from "./retention/retention-command.ts";
import { checkRolesForQueue, parseRoles } from "./roles.ts";
import { type SchemaAtStart, type Services, startServices } from "./services.ts";
import { startSluice } from "./start-sluice.ts";

const USAGE = `usage:
  sluice serve [--role=all|ingest|api|worker|alerts[,...]] [--port N] [--no-migrate]
  sluice migrate [status|plan|apply|lint]
  sluice projects create <slug> [--org <slug>] [--json]
  sluice tokens create [--org <slug>] [--scopes a,b] [--label text] [--json]
                   (with --org: an organization auth token, sntrys_; without: an instance-admin token)
  sluice tokens list [--json]   (every unrevoked token: instance-admin, organization or user)
  sluice users create --email E [--org <slug>] [--role member|admin|manager|owner] [--password-stdin] [--superuser] [--json]
  sluice users reset-password --email E [--json]
  sluice users set-superuser --email E [--revoke] [--json]   (instance admin: /manage/fleet/, /api/0/internal/)
  sluice events failed [--limit N] [--json]   (events the worker gave up on)
  sluice verify     (every attachment and upload blob exists with its SHA-1; exit 1 if not)
  sluice retention run [--dry-run] [--wait S] [--json]   (drop what is past retention now)
  sluice retention set <org>/<project> <days|default>    (a project's own, shorter retention)
  sluice backup create <dir>    (database snapshot, then every blob it refers to, and a manifest)
  sluice backup restore <dir>   (into an empty database and blob store; then run sluice verify)
  sluice config print           (effective settings, secrets masked; keep it with your backups)
  sluice fleet [--json]         (the live nodes: id, host, release, commit, roles, schema, ready)
  sluice upgrade check [--backups <dir>] [--max-backlog N] [--json]   (preflight before rolling to this release; exit 0 = go)
  sluice upgrade verify [--window MIN] [--max-lag S] [--json]       (after the roll; exit 0 = the fleet is healthy)

Settings come from the environment; see README.md.`;

class UsageError extends Error {}

/** The `sluice` command. Exit codes: 0 done, 1 failed, 2 bad usage or configuration. */
async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: "string" },
      port: { type: "string" },
      "no-migrate": { type: "boolean", default: false },
      org: { type: "string" },
      json: { type: "boolean", default: false },
      scopes: { type: "string" },
      label: { type: "string" },
      email: { type: "string" },
      "password-stdin": { type: "boolean", default: false },
      superuser: { type: "boolean", default: false },
      revoke: { type: "boolean", default: false },
      limit: { type: "string", default: "100" },
      "dry-run": { type: "boolean", default: false },
      wait: { type: "string", default: "120" },
      backups: { type: "string" },
      "max-backlog": { type: "string", default: "10000" },
      window: { type: "string", default: "5" },
      "max-lag": { type: "string", default: "60" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, sub, arg] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const env = environmentWithConfigFile({ ...process.env });
  if (values.port !== undefined) env.PORT = values.port;
  const configResult = readConfig(env);
  if (!configResult.ok) {
    console.error(
      `sluice: invalid configuration:\n${configResult.problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    return 2;
  }
  const config = configResult.config;

  switch (command) {
    case "serve":
      return serve(config, values.role ?? "all", !values["no-migrate"]);
    case "migrate":
      return migrate(config, sub ?? "apply");
    case "projects":
      if (sub !== "create" || !arg) throw new UsageError("projects create needs a project slug");
      return withServices(config, async (services) => {
        const { created, org, project, dsn } = await createProjectWithKey(
          services,
          values.org ?? "sluice",
          arg,
        );
        if (values.json) {
          console.log(
            JSON.stringify({
              id: String(project.id),
              slug: project.slug,
              organization: org.slug,
              dsn,
            }),
          );
        } else {
          console.log(
            `${created ? "created" : "exists:"} ${org.slug}/${project.slug}\nDSN: ${dsn}`,
          );
        }
      });
    case "users":
      return usersCommand(config, sub, values);
    case "tokens": {
      if (sub === "list") {
        return withServices(config, async (services) => {
          const tokens = await listAllApiTokens(services.db.pool);
          if (values.json) {
            console.log(JSON.stringify(tokens));
            return;
          }
          printTable(
            ["ID", "KIND", "OWNER", "LABEL", "LAST USED", "SCOPES"],
            tokens.map((t) => [
              t.id,
              t.kind,
              t.owner ?? "(every organization)",
              t.label ?? "",
              t.lastUsedAt?.toISOString() ?? "never",
              t.scopes.join(","),
            ]),
          );
        });
      }
      if (sub !== "create") throw new UsageError("unknown tokens command");
      if (values.org !== undefined) {
        const slug = values.org;
        return withServices(config, async (services) => {
          const org = await findOrganization(services.db.orm, slug);
          if (!org) throw new UsageError(`no organization "${slug}"`);
          const token = newOrganizationToken(org.slug, config.publicUrl);
          await createApiToken(
            services.db.orm,
            hashApiToken(token),
            ORGANIZATION_TOKEN_SCOPES,
            values.label ?? null,
            {
              organizationId: org.id,
              tokenLastCharacters: token.slice(-4),
            },
          );
          console.log(values.json ? JSON.stringify({ token, organization: org.slug }) : token);
        });
      }
      const scopes = values.scopes
        ? values.scopes
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : DEFAULT_SCOPES;
      return withServices(config, async (services) => {
        const token = newApiToken();
        await createApiToken(services.db.orm, hashApiToken(token), scopes, values.label ?? null);
        console.log(values.json ? JSON.stringify({ token }) : token);
      });
    }
    case "events": {
      if (sub !== "failed") throw new UsageError("unknown events command");
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw new UsageError("--limit must be a whole number from 1 to 10000");
      return withServices(config, async (services) => {
        const failed = await listFailedEvents(services.db.pool, limit);
        if (values.json) {
          console.log(
            JSON.stringify(
              failed.map((e) => ({
                organization: e.organization,
                project: e.project,
                projectId: String(e.projectId),
                eventId: e.eventId,
                receivedAt: e.receivedAt.toISOString(),
                failures: e.failures,
                lastError: e.lastError,
                failedAt: e.failedAt.toISOString(),
              })),
            ),
          );
          return;
        }
        if (failed.length === 0) {
          console.log("no failed events");
          return;
        }
        printTable(
          ["PROJECT", "EVENT ID", "FAILURES", "FAILED AT", "LAST ERROR"],
          failed.map((e) => [
            `${e.organization}/${e.project}`,
            e.eventId,
            String(e.failures),
            e.failedAt.toISOString(),
            e.lastError,
          ]),
        );
      });
    }
    case "verify":
      return withServices(
        config,
        async (services) => {
          const { checked, problems } = await verifyBlobs(services, (p) =>
            console.log(`${p.problem}\t${p.table}\t${p.id}\t${p.blobKey}`),
          );
          console.log(`checked ${checked} blob references: ${problems.length} missing or corrupt`);
          return problems.length > 0 ? 1 : 0;
        },
        "none",
      );
    case "fleet":
      return withServices(
        config,
        async (services) => {
          const nodes = await liveNodes(services);
          if (values.json) {
            console.log(JSON.stringify(nodes.map(serializeNode)));
            return;
          }
          if (nodes.length === 0) {
            console.log("no live nodes");
            return;
          }
          const now = Date.now();
          printTable(
            ["ID", "HOST", "RELEASE", "COMMIT", "ROLES", "SCHEMA", "READY", "STARTED", "HEARTBEAT"],
            nodes.map((n) => [
              n.id,
              n.host,
              n.release,
              n.commit?.slice(0, 12) ?? "",
              n.registered ? n.roles.join(",") : "(unregistered)",
              n.registered ? String(n.schemaVersion) : "?",
              n.ready ? "yes" : "no",
              n.registered ? n.startedAt.toISOString() : "",
              `${Math.max(0, Math.round((now - n.heartbeatAt.getTime()) / 1000))} s ago`,
            ]),
          );
        },
        "none",
      );
    case "upgrade":
      return upgradeCommand(config, sub, values);
    case "config":
      if (sub !== "print") throw new UsageError("unknown config command");
      for (const line of printableSettings(env)) console.log(line);
      return 0;
    case "backup": {
      if ((sub !== "create" && sub !== "restore") || !arg)
        throw new UsageError("backup create|restore needs a directory");
      return withServices(config, async (services) => {
        try {
          const started = performance.now();
          const manifest =
            sub === "create"
              ? await createBackup(services, arg, console.log)
              : await restoreBackup(services, arg, console.log);
          const seconds = ((performance.now() - started) / 1000).toFixed(1);
          console.log(
            `${sub === "create" ? "backup written" : "restored"}: snapshot ${manifest.snapshotAt}, schema ${manifest.schemaVersion}, ${manifest.blobs.count} blobs (${manifest.blobs.bytes} bytes), in ${seconds} s`,
          );
          if (manifest.blobs.missing.length > 0 && sub === "create") {
            console.log(
              `${manifest.blobs.missing.length} blobs were missing from the store (listed in the manifest); run sluice verify`,
            );
            return 1;
          }
          return 0;
        } catch (error) {
          if (!(error instanceof RestoreRefused)) throw error;
          console.error(`sluice: ${error.message}`);
          return 1;
        }
      });
    }
    case "retention": {
      if (sub === "set") {
        const value = positionals[3];
        if (!arg || !value)
          throw new UsageError("retention set needs <org>/<project> <days|default>");
        return withServices(config, (services) =>
          retentionSetCommand(services, arg, value, console.log),
        );
      }
      if (sub !== "run") throw new UsageError("unknown retention command");
      const waitSeconds = Number(values.wait);
      if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > 86_400)
        throw new UsageError("--wait must be whole seconds from 0 to 86400");
      return withServices(config, (services) =>
        retentionRunCommand(
          services,
          { dryRun: values["dry-run"], waitMs: waitSeconds * 1000, json: values.json },
          console.log,
        ),
      );
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** A whole number from `min` to `max`, or a usage error naming the option. */
function wholeNumber(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** `sluice upgrade check|verify` (README "Upgrading"). Exit 0: go / healthy; 1: no-go / what is off. */
async function upgradeCommand(
  config: Config,
  sub: string | undefined,
  values: {
    backups?: string;
    "max-backlog": string;
    window: string;
    "max-lag": string;
    json: boolean;
  },
): Promise<number> {
  const { upgradeCheck, upgradeVerify } = await import("./commands/upgrade.ts");
  if (sub === "check") {
    const maxBacklog = wholeNumber(values["max-backlog"], "max-backlog", 0, 1_000_000_000);
    return withServices(
      config,
      async (services) => {
        const report = await upgradeCheck(services, {
          backupsDir: values.backups ?? null,
          maxBacklog,
        });
        if (values.json) console.log(JSON.stringify(report));
        else {
          console.log(
            `target: release ${report.target.release} (${report.target.commit?.slice(0, 12) ?? "commit unknown"}), schema ${report.target.schemaVersion}`,
          );
          if (report.migrations.length === 0) console.log("pending migrations: none");
          for (const m of report.migrations) {
            console.log(`pending ${m.name} (${m.mode})`);
            for (const t of m.takes) console.log(`    ${t}`);
          }
          for (const n of report.nodes)
            console.log(
              `node ${n.id}  ${n.host}  ${n.release}  ${n.withinTwoReleases === null ? "release unknown" : n.withinTwoReleases ? "within N+2" : "NOT within N+2"}`,
            );
          console.log(
            report.backup
              ? `newest backup: ${report.backup.snapshotAt} (${report.backup.ageHours.toFixed(1)} h ago, schema ${report.backup.schemaVersion}) at ${report.backup.path}`
              : "newest backup: none checked",
          );
          console.log(
            `queue: ${report.queue.depth === null ? "jobs run in process (no REDIS_URL)" : `${report.queue.depth} event jobs`}, ${report.queue.unprocessedEvents} events unprocessed`,
          );
          for (const w of report.warnings) console.log(`warning: ${w}`);
          for (const r of report.noGo) console.log(`no-go: ${r}`);
          console.log(report.go ? "GO" : "NO-GO");
        }
        return report.go ? 0 : 1;
      },
      "none",
    );
  }
  if (sub === "verify") {
    const windowMinutes = wholeNumber(values.window, "window", 1, 60);
    const maxLagSeconds = wholeNumber(values["max-lag"], "max-lag", 1, 86_400);
    return withServices(
      config,
      async (services) => {
        const report = await upgradeVerify(services, { windowMinutes, maxLagSeconds });
        if (values.json) console.log(JSON.stringify(report));
        else {
          const t = report.traffic;
          console.log(
            `target: release ${report.target.release}, schema ${report.target.schemaVersion}; ${report.nodes.length} live node(s)`,
          );
          console.log(
            `events: ${t.eventsPerMinute.toFixed(1)}/min (hour before: ${t.baselineEventsPerMinute.toFixed(1)}/min); failures: ${t.failuresPerMinute.toFixed(1)}/min; unprocessed: ${t.unprocessedEvents}, oldest ${Math.round(t.oldestUnprocessedSeconds)} s`,
          );
          for (const p of report.problems) console.log(`problem: ${p}`);
          console.log(report.ok ? "OK" : "NOT OK");
        }
        return report.ok ? 0 : 1;
      },
      "none",
    );
  }
  throw new UsageError("upgrade needs check or verify");
}

/** `sluice users create|reset-password|set-superuser`. */
async function usersCommand(
  config: Config,
  sub: string | undefined,
  values: {
    email?: string;
    org?: string;
    role?: string;
    "password-stdin": boolean;
    superuser: boolean;
    revoke: boolean;
    json: boolean;
  },
): Promise<number> {
  const email = values.email;
  if (!email) throw new UsageError("users commands need --email");
  if (sub === "set-superuser") {
    return withServices(config, async (services) => {
      const result = await setSuperuserCommand(services, email, !values.revoke).catch(commandError);
      if (values.json) console.log(JSON.stringify(result));
      else
        console.log(
          result.isSuperuser
            ? `${result.email} is a superuser (instance admin)`
            : `${result.email} is no longer a superuser`,
        );
    });
  }
  if (sub === "reset-password") {
    return withServices(config, async (services) => {
      const { link, mailed } = await resetPasswordCommand(services, email).catch(commandError);
      if (values.json) console.log(JSON.stringify({ link, mailed }));
      else
        console.log(
          mailed
            ? `mailed a link to ${email}; it also works here:\n  ${link}`
            : `one-time link to set a new password (7 days):\n  ${link}`,
        );
    });
  }
  if (sub !== "create") throw new UsageError("unknown users command");
  const role = values.role ?? "member";
  if (!isOrganizationRole(role))
    throw new UsageError("--role must be member, admin, manager or owner");
  const password = values["password-stdin"] ? (await readStdin()).replace(/\r?\n$/, "") : null;
  return withServices(config, async (services) => {
    const result = await createUserCommand(services, {
      email,
      orgSlug: values.org ?? "sluice",
      role,
      password,
      superuser: values.superuser,
    }).catch(commandError);
    if (values.json) {
      console.log(
        JSON.stringify({
          email,
          organization: values.org ?? "sluice",
          role,
          superuser: values.superuser,
          ...result,
        }),
      );
      return;
    }
    console.log(
      `${result.created ? "created" : "exists:"} ${email}, ${role} of ${values.org ?? "sluice"}${values.superuser ? ", superuser" : ""}`,
    );
    if (result.setPasswordLink)
      console.log(
        `${result.mailed ? "mailed; " : ""}one-time link to set the password (7 days):\n  ${result.setPasswordLink}`,
      );
  });
}

function commandError(error: unknown): never {
  if (error instanceof CommandError) throw new UsageError(error.message);
  throw error;
}

/** Standard input, whole (bounded: a password, not a file). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new UsageError("standard input is longer than a password");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function withServices(
  config: Config,
  work: (services: Services) => Promise<number | undefined> | Promise<void>,
  schema: SchemaAtStart = "migrate",
): Promise<number> {
  const log = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, "cli");
  const services = await startServices(config, log, { schema });
  try {
    return (await work(services)) ?? 0;
  } finally {
    await services.close();
  }
}

async function migrate(config: Config, sub: string): Promise<number> {
  if (sub === "apply") {
    return withServices(config, async (services) => {
      const state = await readMigrationState(services.db.pool);
      console.log(`applied: ${state.applied.length}, pending: ${state.pending.length}`);
      for (const refusal of services.gateRefusals) console.log(refusal.message);
      return services.gateRefusals.length > 0 ? 1 : 0;
    });
  }
  if (sub === "lint") return lintMigrationsCommand();
  if (sub !== "status" && sub !== "plan") throw new UsageError(`unknown migrate command "${sub}"`);
  const log = createLogger("warn", "cli");
  const services = await startServices(config, log, { schema: "none" });
  try {
    await ensureMigrationTables(services.db.pool);
    const files = readMigrationFiles();
    const state = await readMigrationState(services.db.pool, files);
    if (sub === "plan") {
      if (state.edited.length > 0) throw new EditedMigrationError(state.edited.map((f) => f.name));
      if (state.pending.length === 0) console.log("nothing to apply");
      for (const file of state.pending) {
        const mode = file.noTransaction
          ? "statement by statement, outside a transaction"
          : "in one transaction";
        console.log(`would apply ${file.name} (${mode}):\n${indent(file.sql.trim())}\n`);
      }
      return 0;
    }
    const applied = new Map(state.applied.map((m) => [m.version, m]));
    for (const file of files) {
      const row = applied.get(file.version);
      const mark = !row ? "pending" : row.checksum === file.checksum ? "applied" : "EDITED";
      console.log(`${mark.padEnd(8)} ${file.name}${row ? `  ${row.appliedAt.toISOString()}` : ""}`);
    }
    for (const row of state.ahead) console.log(`ahead    ${row.name} (unknown to this release)`);
    const lock = await readMigrationLock(services.db.pool);
    console.log(
      lock ? `lock: held by ${lock.holder} until ${lock.expiresAt.toISOString()}` : "lock: free",
    );
    return state.edited.length > 0 ? 1 : 0;
  } finally {
    await services.close();
  }
}

/** Prints rows as columns padded to their widest cell; the last column is left unpadded. */
function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  for (const row of [header, ...rows]) {
    console.log(
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  "),
    );
  }
}

function indent(text: string): string {
  return text.replace(/^/gm, "    ");
}

/** `sluice migrate lint`: every rule over every migration file; exit 1 on any finding. */
async function lintMigrationsCommand(): Promise<number> {
  const { formatFinding, lintMigrations } = await import("@sluice/migration-lint");
  const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
  const findings = await lintMigrations({ repoRoot });
  for (const finding of findings) console.log(formatFinding(finding));
  console.log(
    findings.length === 0 ? "migrations: no findings" : `migrations: ${findings.length} finding(s)`,
  );
  return findings.length === 0 ? 0 : 1;
}

async function serve(config: Config, roleArg: string, migrateOnStart: boolean): Promise<number> {
  const roles = parseRoles(roleArg);
  const problem = checkRolesForQueue(roles, config.redisUrl !== null);
  if (problem) {
    console.error(`sluice: invalid configuration:\n  - ${problem}`);
    return 2;
  }
  const log = createLogger(config.logLevel, [...roles].join(","));
  const services = await startServices(config, log, {
    schema: migrateOnStart ? "migrate" : "wait",
  });
  if (services.embedded) {
    const { dsn } = await createProjectWithKey(services, "sluice", "default");
    const owner = await firstOwnerLink(services);
    console.log(
      `Sluice is running at ${config.publicUrl}\nDSN for organization "sluice", project "default":\n  ${dsn}${owner ? `\nCreate the first owner (sign-in account) here:\n  ${owner}` : `\nSign in at ${config.publicUrl}/auth/login/`}`,
    );
  }
  const running = await startSluice(services, roles, config.port, config.host).catch(
    async (error) => {
      await services.close();
      throw error;
    },
  );
  process.on("SIGHUP", () => reloadConfig(config, log, process.env));
  const clean = await new Promise<boolean>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, "shutting down");
      running
        .stop({ delayMs: config.shutdown.drainDelayMs, timeoutMs: config.shutdown.timeoutMs })
        .then(async (finished) => {
          await services.close();
          resolve(finished);
        })
        .catch((error) => {
          log.error({ err: error }, "shutdown failed");
          process.exit(1);
        });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
  log.info({ clean }, "stopped");
  return clean ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      console.error(`sluice: ${(error as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      // A database error's message can hold SQL and its parameters (drizzle's
      // "Failed query: … params: …"): print what the log serializer keeps.
      const safe = serializeError(error);
      const fromDatabase =
        typeof safe.code === "string" ||
        safe.wrappedBy !== undefined ||
        (error as Error).message?.startsWith("Failed query:");
      console.error(`sluice: ${fromDatabase ? safe.message : (error as Error).message}`);
      if (process.env.LOG_LEVEL === "debug") console.error(safe.stack);
      process.exitCode = 1;
    }
  },
);

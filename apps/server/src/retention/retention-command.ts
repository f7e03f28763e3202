import {
  findProject,
  readLease,
  setProjectRetentionDays,
  takeLeaseUnlessRunning,
} from "@sluice/db";
import type { Services } from "../services.ts";
import {
  finishMaintenance,
  MAINTENANCE_LEASE,
  MAINTENANCE_LEASE_MS,
  retentionOptions,
} from "./maintenance-lease.ts";
import { projectRetentionDaysField } from "./project-retention-setting.ts";
import { type RetentionReport, runRetention } from "./run-retention.ts";

/**
 * `sluice retention run [--dry-run] [--wait S]`: one retention run now,
 * printing each step. It takes the `maintenance` lease like a node's hourly
 * run: at once when the lease is free or only kept idle by a node that has
 * finished; while a node's run is in progress it waits, at most `waitMs`,
 * then exits 1 naming the holder. A dry run takes no lease and changes
 * nothing. Returns the exit code.
 */
export async function retentionRunCommand(
  services: Services,
  options: { dryRun: boolean; waitMs: number; json: boolean },
  print: (line: string) => void,
): Promise<number> {
  const { db, config } = services;
  const holder = `cli:${services.instanceId}`;
  if (!options.dryRun) {
    const deadline = Date.now() + options.waitMs;
    let told = false;
    while (
      !(await takeLeaseUnlessRunning(db.pool, MAINTENANCE_LEASE, holder, MAINTENANCE_LEASE_MS))
    ) {
      const lease = await readLease(db.pool, MAINTENANCE_LEASE);
      if (Date.now() >= deadline) {
        print(
          `maintenance is running on ${lease?.holder ?? "another node"} (lease until ${lease?.expiresAt.toISOString() ?? "?"}); try again, or --wait longer`,
        );
        return 1;
      }
      if (!told)
        print(`waiting for ${lease?.holder ?? "another node"}'s maintenance run to finish`);
      told = true;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  let report: RetentionReport;
  try {
    report = await runRetention(
      services,
      retentionOptions(config, services, holder, {
        dryRun: options.dryRun,
        onProgress: (step, fields) => {
          if (!options.json) print(`${step}: ${JSON.stringify(fields)}`);
        },
      }),
    );
  } finally {
    if (!options.dryRun) await finishMaintenance(services, holder);
  }
  if (options.json) {
    print(JSON.stringify(report));
  } else {
    const verb = report.dryRun ? "would drop" : "dropped";
    const bytes = report.partitions.reduce((sum, p) => sum + p.bytes, 0);
    print(`cutoff ${report.cutoff.toISOString()} (SLUICE_RETENTION_DAYS=${config.retentionDays})`);
    print(
      `${verb} ${report.partitions.length} partition(s), ${(bytes / 1048576).toFixed(1)} MiB: ${report.partitions.map((p) => p.name).join(", ") || "none"}`,
    );
    if (report.partitionsSkipped.length > 0)
      print(`skipped (lock not granted, next run retries): ${report.partitionsSkipped.join(", ")}`);
    print(
      `${report.dryRun ? "would delete" : "deleted"}: ${report.eventIds} event ids, ${report.defaultEvents} events of events_default, ${report.attachments} attachments, ${report.issues} issues, ${report.uploadChunks} upload chunks, ${report.outcomes} outcome rows, ${report.blobs} blobs`,
    );
  }
  return report.complete ? 0 : 1;
}

/**
 * `sluice retention set <org>/<project> <days|default>`: stores a project's
 * own retention (bounded as the API bounds it). Returns the exit code.
 */
export async function retentionSetCommand(
  services: Services,
  target: string,
  value: string,
  print: (line: string) => void,
): Promise<number> {
  const [org, slug] = target.split("/");
  const project = org && slug ? await findProject(services.db.orm, org, slug) : null;
  if (!project) {
    print(`no project ${target} (give <org>/<project>)`);
    return 2;
  }
  const parsed = projectRetentionDaysField(services.config.retentionDays).safeParse(
    value === "default" ? null : Number(value),
  );
  if (!parsed.success) {
    print(`retention days ${parsed.error.issues[0]?.message ?? "invalid"}`);
    return 2;
  }
  await setProjectRetentionDays(services.db.pool, project.id, parsed.data);
  print(
    `${target}: retention ${parsed.data === null ? `of the instance (${services.config.retentionDays} days)` : `${parsed.data} days`}`,
  );
  return 0;
}

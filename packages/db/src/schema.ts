import {
  bigint,
  boolean,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";

/**
 * The drizzle mirror of `migrations/*.sql`, which are the schema's truth.
 * `schema-mirror.int.test.ts` applies the migrations and fails when a table or
 * column here disagrees with the database.
 */
const id = () => bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity();
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const ref = (name: string) => bigint(name, { mode: "number" });

export const migrations = pgTable("sluice_migrations", {
  version: integer("version").primaryKey(),
  name: text("name").notNull(),
  checksum: text("checksum").notNull(),
  appliedAt: ts("applied_at").notNull().defaultNow(),
  durationMs: integer("duration_ms").notNull(),
});

export const migrationLock = pgTable("sluice_migration_lock", {
  id: integer("id").primaryKey(),
  holder: text("holder").notNull(),
  takenAt: ts("taken_at").notNull(),
  heartbeatAt: ts("heartbeat_at").notNull(),
  expiresAt: ts("expires_at").notNull(),
});

export const organizations = pgTable("organizations", {
  id: id(),
  slug: text("slug").notNull().unique(),
  name: text("name").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const projects = pgTable(
  "projects",
  {
    id: id(),
    organizationId: ref("organization_id")
      .notNull()
      .references(() => organizations.id),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    platform: text("platform"),
    nextShortId: bigint("next_short_id", { mode: "number" }).notNull().default(1),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.organizationId, t.slug)],
);

export const projectKeys = pgTable("project_keys", {
  id: id(),
  projectId: ref("project_id")
    .notNull()
    .references(() => projects.id),
  publicKey: text("public_key").notNull().unique(),
  label: text("label").notNull().default("Default"),
  isActive: boolean("is_active").notNull().default(true),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const apiTokens = pgTable("api_tokens", {
  id: id(),
  tokenHash: text("token_hash").notNull().unique(),
  scopes: text("scopes").array().notNull().default([]),
  label: text("label"),
  createdAt: ts("created_at").notNull().defaultNow(),
  lastUsedAt: ts("last_used_at"),
});

export const issues = pgTable(
  "issues",
  {
    id: id(),
    projectId: ref("project_id")
      .notNull()
      .references(() => projects.id),
    shortId: bigint("short_id", { mode: "number" }).notNull(),
    type: text("type").notNull().default("error"),
    title: text("title").notNull(),
    culprit: text("culprit").notNull().default(""),
    level: text("level").notNull().default("error"),
    platform: text("platform").notNull().default("other"),
    logger: text("logger"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    status: text("status").notNull().default("unresolved"),
    firstSeen: ts("first_seen").notNull(),
    lastSeen: ts("last_seen").notNull(),
    timesSeen: bigint("times_seen", { mode: "number" }).notNull().default(0),
    userCount: bigint("user_count", { mode: "number" }).notNull().default(0),
    firstRelease: text("first_release"),
    lastRelease: text("last_release"),
    resolvedAt: ts("resolved_at"),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.projectId, t.shortId)],
);

export const issueHashes = pgTable(
  "issue_hashes",
  {
    projectId: ref("project_id").notNull(),
    hash: text("hash").notNull(),
    issueId: ref("issue_id")
      .notNull()
      .references(() => issues.id),
    variant: text("variant").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.hash] })],
);

export const issueUsers = pgTable(
  "issue_users",
  {
    issueId: ref("issue_id")
      .notNull()
      .references(() => issues.id),
    userKey: text("user_key").notNull(),
  },
  (t) => [primaryKey({ columns: [t.issueId, t.userKey] })],
);

export const eventIds = pgTable(
  "event_ids",
  {
    projectId: ref("project_id").notNull(),
    eventId: uuid("event_id").notNull(),
    receivedAt: ts("received_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.eventId] })],
);

export const events = pgTable(
  "events",
  {
    projectId: ref("project_id").notNull(),
    eventId: uuid("event_id").notNull(),
    receivedAt: ts("received_at").notNull(),
    timestamp: ts("timestamp").notNull(),
    keyId: ref("key_id"),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    issueId: ref("issue_id"),
    processedAt: ts("processed_at"),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.eventId, t.receivedAt] })],
);

export const attachments = pgTable(
  "attachments",
  {
    id: id(),
    projectId: ref("project_id").notNull(),
    eventId: uuid("event_id").notNull(),
    filename: text("filename").notNull(),
    contentType: text("content_type").notNull(),
    attachmentType: text("attachment_type").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    sha1: text("sha1").notNull(),
    blobKey: text("blob_key").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.projectId, t.eventId, t.filename, t.sha1)],
);

export const outcomes = pgTable(
  "outcomes",
  {
    projectId: ref("project_id").notNull(),
    hour: ts("hour").notNull(),
    outcome: text("outcome").notNull(),
    category: text("category").notNull(),
    reason: text("reason").notNull().default(""),
    quantity: bigint("quantity", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.hour, t.outcome, t.category, t.reason] })],
);

export const leases = pgTable("leases", {
  name: text("name").primaryKey(),
  holder: text("holder").notNull(),
  expiresAt: ts("expires_at").notNull(),
});

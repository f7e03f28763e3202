import {
  bigint,
  boolean,
  customType,
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
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

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

export const nodes = pgTable("sluice_nodes", {
  id: text("id").primaryKey(),
  host: text("host").notNull(),
  release: text("release").notNull(),
  commit: text("commit"),
  roles: text("roles").array().notNull().default([]),
  schemaVersion: bigint("schema_version", { mode: "number" }).notNull(),
  registered: boolean("registered").notNull().default(true),
  ready: boolean("ready").notNull().default(false),
  startedAt: ts("started_at").notNull().defaultNow(),
  heartbeatAt: ts("heartbeat_at").notNull().defaultNow(),
});

export const schemaFloor = pgTable("sluice_schema_floor", {
  migration: bigint("migration", { mode: "number" }).primaryKey(),
  oldestRelease: text("oldest_release").notNull(),
  reason: text("reason").notNull(),
  recordedAt: ts("recorded_at").notNull().defaultNow(),
});

export const organizations = pgTable("organizations", {
  id: id(),
  slug: text("slug").notNull().unique(),
  name: text("name").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
  openMembership: boolean("open_membership").notNull().default(true),
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
    /** Event retention of this project in days, below the instance's (null: the instance's). */
    retentionDays: bigint("retention_days", { mode: "number" }),
    /**
     * Until when the worker also matches issues by the previous grouping
     * config's hashes (Sentry's sentry:secondary_grouping_expiry); null: no
     * transition (migration 0015).
     */
    secondaryGroupingExpiry: ts("secondary_grouping_expiry"),
  },
  (t) => [unique().on(t.organizationId, t.slug)],
);

/** A project's grouping rules in Sentry's syntax; '' is none (migration 0006). */
export const projectGroupingRules = pgTable("project_grouping_rules", {
  projectId: ref("project_id")
    .primaryKey()
    .references(() => projects.id),
  fingerprintingRules: text("fingerprinting_rules").notNull().default(""),
  groupingEnhancements: text("grouping_enhancements").notNull().default(""),
  updatedAt: ts("updated_at").notNull().defaultNow(),
});

export const projectKeys = pgTable("project_keys", {
  id: id(),
  projectId: ref("project_id")
    .notNull()
    .references(() => projects.id),
  publicKey: text("public_key").notNull().unique(),
  label: text("label").notNull().default("Default"),
  isActive: boolean("is_active").notNull().default(true),
  createdAt: ts("created_at").notNull().defaultNow(),
  /** Sentry's key rate limit: at most this many events per `rateLimitWindow` seconds (migration 0007). */
  rateLimitCount: bigint("rate_limit_count", { mode: "number" }),
  rateLimitWindow: bigint("rate_limit_window", { mode: "number" }),
});

export const apiTokens = pgTable("api_tokens", {
  id: id(),
  tokenHash: text("token_hash").notNull().unique(),
  scopes: text("scopes").array().notNull().default([]),
  label: text("label"),
  createdAt: ts("created_at").notNull().defaultNow(),
  lastUsedAt: ts("last_used_at"),
  organizationId: ref("organization_id"),
  userId: ref("user_id"),
  revokedAt: ts("revoked_at"),
  tokenLastCharacters: text("token_last_characters"),
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
    /** The issue this one was merged into (migration 0006); null while it is live. */
    mergedIntoId: ref("merged_into_id"),
    /** Sentry's GroupResolution type (migration 0010): in_next_release, in_release, or null. */
    resolutionType: text("resolution_type"),
    /** The release that type names (migration 0010). */
    resolutionRelease: text("resolution_release"),
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

/** Tag values of an issue's events with their counts (migration 0010). */
export const issueTagValues = pgTable(
  "issue_tag_values",
  {
    issueId: ref("issue_id").notNull(),
    projectId: ref("project_id").notNull(),
    key: text("key").notNull(),
    value: text("value").notNull(),
    timesSeen: bigint("times_seen", { mode: "number" }).notNull().default(0),
    firstSeen: ts("first_seen").notNull(),
    lastSeen: ts("last_seen").notNull(),
  },
  (t) => [primaryKey({ columns: [t.issueId, t.key, t.value] })],
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
    // JSON null when the payload is in payload_compressed (event-payload.ts).
    payload: jsonb("payload").$type<Record<string, unknown> | null>().notNull(),
    issueId: ref("issue_id"),
    processedAt: ts("processed_at"),
    payloadCompressed: bytea("payload_compressed"),
    /** The event's first group hash (migration 0006); null for events grouped before it. */
    primaryHash: text("primary_hash"),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.eventId, t.receivedAt] })],
);

/** Processing failures of an event; `failedAt` set once the worker gave up (migration 0004). */
export const eventFailures = pgTable(
  "event_failures",
  {
    projectId: ref("project_id").notNull(),
    eventId: uuid("event_id").notNull(),
    receivedAt: ts("received_at").notNull(),
    failures: bigint("failures", { mode: "number" }).notNull().default(0),
    lastError: text("last_error").notNull().default(""),
    lastFailedAt: ts("last_failed_at").notNull().defaultNow(),
    failedAt: ts("failed_at"),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.eventId] })],
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

/** Blobs whose last reference retention deleted; deleted after a grace period (retention/). */
export const blobDeletions = pgTable("blob_deletions", {
  blobKey: text("blob_key").primaryKey(),
  queuedAt: ts("queued_at").notNull().defaultNow(),
});

export const releases = pgTable(
  "releases",
  {
    id: id(),
    organizationId: ref("organization_id")
      .notNull()
      .references(() => organizations.id),
    version: text("version").notNull(),
    ref: text("ref"),
    url: text("url"),
    dateStarted: ts("date_started"),
    dateReleased: ts("date_released"),
    commits: jsonb("commits").$type<Record<string, unknown>[]>().notNull().default([]),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.organizationId, t.version)],
);

export const releaseProjects = pgTable(
  "release_projects",
  {
    releaseId: ref("release_id")
      .notNull()
      .references(() => releases.id, { onDelete: "cascade" }),
    projectId: ref("project_id")
      .notNull()
      .references(() => projects.id),
    firstEvent: ts("first_event"),
    lastEvent: ts("last_event"),
  },
  (t) => [primaryKey({ columns: [t.releaseId, t.projectId] })],
);

export const releaseEnvironments = pgTable(
  "release_environments",
  {
    releaseId: ref("release_id")
      .notNull()
      .references(() => releases.id, { onDelete: "cascade" }),
    projectId: ref("project_id")
      .notNull()
      .references(() => projects.id),
    environment: text("environment").notNull(),
    firstSeen: ts("first_seen").notNull(),
    lastSeen: ts("last_seen").notNull(),
  },
  (t) => [primaryKey({ columns: [t.releaseId, t.projectId, t.environment] })],
);

export const deploys = pgTable("deploys", {
  id: id(),
  releaseId: ref("release_id")
    .notNull()
    .references(() => releases.id, { onDelete: "cascade" }),
  environment: text("environment").notNull(),
  name: text("name"),
  url: text("url"),
  dateStarted: ts("date_started"),
  dateFinished: ts("date_finished").notNull().defaultNow(),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const uploadChunks = pgTable(
  "upload_chunks",
  {
    organizationId: ref("organization_id")
      .notNull()
      .references(() => organizations.id),
    sha1: text("sha1").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    blobKey: text("blob_key").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.sha1] })],
);

export const artifactBundles = pgTable(
  "artifact_bundles",
  {
    id: id(),
    organizationId: ref("organization_id")
      .notNull()
      .references(() => organizations.id),
    checksum: text("checksum").notNull(),
    chunks: text("chunks").array().notNull(),
    projectIds: bigint("project_ids", { mode: "number" }).array().notNull().default([]),
    release: text("release"),
    dist: text("dist"),
    bundleId: text("bundle_id"),
    state: text("state").$type<"assembling" | "ok" | "error">().notNull(),
    detail: text("detail"),
    fileCount: bigint("file_count", { mode: "number" }).notNull().default(0),
    claimedAt: ts("claimed_at").notNull().defaultNow(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.organizationId, t.checksum)],
);

export const artifacts = pgTable("artifacts", {
  id: id(),
  organizationId: ref("organization_id")
    .notNull()
    .references(() => organizations.id),
  bundleId: ref("bundle_id").references(() => artifactBundles.id, { onDelete: "cascade" }),
  release: text("release"),
  dist: text("dist").notNull().default(""),
  url: text("url").notNull(),
  type: text("type").notNull(),
  debugId: uuid("debug_id"),
  headers: jsonb("headers").$type<Record<string, string>>().notNull().default({}),
  size: bigint("size", { mode: "number" }).notNull(),
  sha1: text("sha1").notNull(),
  blobKey: text("blob_key").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const users = pgTable("users", {
  id: id(),
  email: text("email").notNull().unique(),
  name: text("name"),
  passwordHash: text("password_hash"),
  isActive: boolean("is_active").notNull().default(true),
  createdAt: ts("created_at").notNull().defaultNow(),
  lastLoginAt: ts("last_login_at"),
  isSuperuser: boolean("is_superuser").notNull().default(false),
});

export const organizationMembers = pgTable(
  "organization_members",
  {
    id: id(),
    organizationId: ref("organization_id")
      .notNull()
      .references(() => organizations.id),
    userId: ref("user_id").references(() => users.id),
    email: text("email").notNull(),
    role: text("role").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.organizationId, t.email)],
);

export const teams = pgTable(
  "teams",
  {
    id: id(),
    organizationId: ref("organization_id")
      .notNull()
      .references(() => organizations.id),
    slug: text("slug").notNull(),
    name: text("name").notNull(),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.organizationId, t.slug)],
);

export const teamMembers = pgTable(
  "team_members",
  {
    teamId: ref("team_id")
      .notNull()
      .references(() => teams.id),
    memberId: ref("member_id")
      .notNull()
      .references(() => organizationMembers.id),
  },
  (t) => [primaryKey({ columns: [t.teamId, t.memberId] })],
);

export const projectTeams = pgTable(
  "project_teams",
  {
    projectId: ref("project_id")
      .notNull()
      .references(() => projects.id),
    teamId: ref("team_id")
      .notNull()
      .references(() => teams.id),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.teamId] })],
);

export const userSessions = pgTable("user_sessions", {
  id: id(),
  secretHash: text("secret_hash").notNull().unique(),
  userId: ref("user_id")
    .notNull()
    .references(() => users.id),
  csrfToken: text("csrf_token").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
  lastSeenAt: ts("last_seen_at").notNull().defaultNow(),
  expiresAt: ts("expires_at").notNull(),
  revokedAt: ts("revoked_at"),
  userAgent: text("user_agent"),
  ipAddress: text("ip_address"),
});

export const userLinks = pgTable("user_links", {
  secretHash: text("secret_hash").primaryKey(),
  purpose: text("purpose").notNull(),
  userId: ref("user_id").references(() => users.id),
  memberId: ref("member_id").references(() => organizationMembers.id),
  createdAt: ts("created_at").notNull().defaultNow(),
  expiresAt: ts("expires_at").notNull(),
  usedAt: ts("used_at"),
});

export const userIdentities = pgTable(
  "user_identities",
  {
    issuer: text("issuer").notNull(),
    subject: text("subject").notNull(),
    userId: ref("user_id")
      .notNull()
      .references(() => users.id),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.issuer, t.subject] })],
);

export const oidcLogins = pgTable("oidc_logins", {
  state: text("state").primaryKey(),
  nonce: text("nonce").notNull(),
  codeVerifier: text("code_verifier").notNull(),
  nextPath: text("next_path").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const signInFailures = pgTable(
  "sign_in_failures",
  {
    subject: text("subject").notNull(),
    windowStart: ts("window_start").notNull(),
    failures: bigint("failures", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.subject, t.windowStart] })],
);

export const auditLogEntries = pgTable("audit_log_entries", {
  id: id(),
  organizationId: ref("organization_id")
    .notNull()
    .references(() => organizations.id),
  actorUserId: ref("actor_user_id"),
  actorLabel: text("actor_label").notNull(),
  event: text("event").notNull(),
  targetObject: ref("target_object"),
  targetUserId: ref("target_user_id"),
  ipAddress: text("ip_address"),
  data: jsonb("data").$type<Record<string, unknown>>().notNull().default({}),
  createdAt: ts("created_at").notNull().defaultNow(),
});

/** Quotas by data category over a fixed window; no `projectId`: organization-wide (migration 0007). */
export const quotas = pgTable("quotas", {
  id: id(),
  organizationId: ref("organization_id").notNull(),
  projectId: ref("project_id"),
  categories: text("categories").array().notNull().default([]),
  windowSeconds: bigint("window_seconds", { mode: "number" }).notNull(),
  quotaLimit: bigint("quota_limit", { mode: "number" }).notNull(),
  reasonCode: text("reason_code").notNull().default(""),
  createdAt: ts("created_at").notNull().defaultNow(),
});

/** Spike protection per project: settings and the current or last spike (migration 0007). */
export const spikeProtection = pgTable("spike_protection", {
  projectId: ref("project_id").primaryKey(),
  enabled: boolean("enabled").notNull().default(true),
  active: boolean("active").notNull().default(false),
  bound: bigint("bound", { mode: "number" }),
  startedAt: ts("started_at"),
  endedAt: ts("ended_at"),
  trips: bigint("trips", { mode: "number" }).notNull().default(0),
  updatedAt: ts("updated_at").notNull().defaultNow(),
});

// Issue alerts (migrations/0009_alert_rules.sql).
const n = (name: string) => bigint(name, { mode: "number" });

export const alertRules = pgTable("alert_rules", {
  id: id(),
  projectId: ref("project_id")
    .notNull()
    .references(() => projects.id),
  name: text("name").notNull(),
  environment: text("environment"),
  actionMatch: text("action_match").notNull().default("all"),
  filterMatch: text("filter_match").notNull().default("all"),
  frequencyMinutes: n("frequency_minutes").notNull().default(30),
  conditions: jsonb("conditions").$type<unknown[]>().notNull().default([]),
  filters: jsonb("filters").$type<unknown[]>().notNull().default([]),
  actions: jsonb("actions").$type<unknown[]>().notNull().default([]),
  status: text("status").notNull().default("active"),
  createdAt: ts("created_at").notNull().defaultNow(),
  updatedAt: ts("updated_at").notNull().defaultNow(),
  deliveriesSent: n("deliveries_sent").notNull().default(0),
  deliveriesFailed: n("deliveries_failed").notNull().default(0),
  lastDeliveredAt: ts("last_delivered_at"),
  lastError: text("last_error"),
  lastErrorAt: ts("last_error_at"),
});

export const projectPlugins = pgTable(
  "project_plugins",
  {
    projectId: ref("project_id")
      .notNull()
      .references(() => projects.id),
    plugin: text("plugin").notNull(),
    enabled: boolean("enabled").notNull().default(true),
    config: jsonb("config").$type<Record<string, unknown>>().notNull().default({}),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.plugin] })],
);

export const alertRuleCounters = pgTable(
  "alert_rule_counters",
  {
    ruleId: ref("rule_id")
      .notNull()
      .references(() => alertRules.id),
    issueId: ref("issue_id")
      .notNull()
      .references(() => issues.id),
    intervalSeconds: n("interval_seconds").notNull(),
    windowStart: ts("window_start").notNull(),
    events: n("events").notNull().default(0),
    users: n("users").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.ruleId, t.issueId, t.intervalSeconds, t.windowStart] })],
);

export const alertRuleUsers = pgTable(
  "alert_rule_users",
  {
    ruleId: ref("rule_id").notNull(),
    issueId: ref("issue_id").notNull(),
    intervalSeconds: n("interval_seconds").notNull(),
    windowStart: ts("window_start").notNull(),
    userKey: text("user_key").notNull(),
  },
  (t) => [
    primaryKey({
      columns: [t.ruleId, t.issueId, t.intervalSeconds, t.windowStart, t.userKey],
    }),
  ],
);

export const alertFirings = pgTable(
  "alert_firings",
  {
    id: id(),
    ruleId: ref("rule_id")
      .notNull()
      .references(() => alertRules.id),
    issueId: ref("issue_id")
      .notNull()
      .references(() => issues.id),
    triggerKey: text("trigger_key").notNull(),
    eventId: uuid("event_id").notNull(),
    eventReceivedAt: ts("event_received_at").notNull(),
    firedAt: ts("fired_at").notNull().defaultNow(),
  },
  (t) => [unique().on(t.ruleId, t.issueId, t.triggerKey)],
);

export const alertDeliveries = pgTable(
  "alert_deliveries",
  {
    id: id(),
    firingId: ref("firing_id")
      .notNull()
      .references(() => alertFirings.id),
    actionIndex: n("action_index").notNull(),
    actionType: text("action_type").notNull(),
    target: text("target").notNull(),
    idempotencyKey: uuid("idempotency_key").notNull().defaultRandom(),
    status: text("status").notNull().default("pending"),
    attempts: n("attempts").notNull().default(0),
    lastError: text("last_error"),
    createdAt: ts("created_at").notNull().defaultNow(),
    enqueuedAt: ts("enqueued_at"),
    deliveredAt: ts("delivered_at"),
  },
  (t) => [unique().on(t.firingId, t.actionIndex, t.target)],
);

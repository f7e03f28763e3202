import { resolve } from "node:path";
import type { PayloadStorage } from "@sluice/db";
import { defaultLimits, type Limits } from "@sluice/protocol";
import { z } from "zod";

const int = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);

const envSchema = z.object({
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: "must be a postgres:// URL" })
    .optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: "must be a redis:// URL" }).optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  SLUICE_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  HOST: z.string().default("0.0.0.0"),
  SLUICE_URL: z.url({ protocol: /^https?$/, error: "must be an http(s):// URL" }).optional(),
  SLUICE_DATA_DIR: z.string().min(1).default("./.sluice"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  SLUICE_QUEUE_PREFIX: z
    .string()
    .regex(/^[\w.-]+$/)
    .default("sluice"),
  SLUICE_DB_POOL_SIZE: int(10, 1),
  SLUICE_WORKER_CONCURRENCY: int(64, 1),
  SLUICE_SOURCEMAP_CACHE_BYTES: int(128 * 1024 * 1024, 0),
  SLUICE_PAYLOAD_STORAGE: z.enum(["jsonb", "compressed", "zstd"]).default("jsonb"),
  SLUICE_GROUP_COMMIT_WINDOW_MS: int(2),
  SLUICE_GROUP_COMMIT_MAX_EVENTS: int(500, 1),
  SLUICE_GROUP_COMMIT_MAX_PENDING: int(10_000, 1),
  SLUICE_RATE_LIMIT_BATCH_WINDOW_MS: int(3),
  SLUICE_RATE_LIMIT_REDIS_TIMEOUT_MS: int(100, 1),
  SLUICE_SPIKE_MULTIPLE: z.coerce.number().min(1).default(10),
  SLUICE_SPIKE_FLOOR_PER_MINUTE: int(60_000, 1),
  SLUICE_SPIKE_TRAILING_MINUTES: int(60, 1),
  SLUICE_SWEEP_INTERVAL_MS: int(10_000, 10),
  SLUICE_SWEEP_MIN_AGE_MS: int(30_000),
  SLUICE_RETENTION_DAYS: int(90, 1),
  SLUICE_OUTCOMES_RETENTION_DAYS: int(395, 1),
  SLUICE_RETENTION_LOCK_TIMEOUT_MS: int(500, 1),
  SLUICE_BLOB_GC_GRACE_MS: int(3_600_000),
  SLUICE_MAX_ENVELOPE_BYTES: int(defaultLimits.maxEnvelopeBytes, 1024),
  SLUICE_MAX_EVENT_BYTES: int(defaultLimits.maxEventBytes, 1024),
  SLUICE_MAX_ATTACHMENT_BYTES: int(defaultLimits.maxAttachmentBytes, 1024),
  SLUICE_MAX_BYTES_IN_FLIGHT: int(256 * 1024 * 1024, 1024 * 1024),
  SLUICE_MAX_API_BODY_BYTES: int(1024 * 1024, 1024),
  SLUICE_KEY_CACHE_ENTRIES: int(10_000, 1),
  SLUICE_MAX_EVENT_FAILURES: int(5, 1),
  SLUICE_SMTP_URL: z
    .url({ protocol: /^smtps?$/, error: "must be an smtp:// or smtps:// URL" })
    .optional(),
  SLUICE_ALERT_EMAIL_FROM: z.string().min(3).max(320).optional(),
  SLUICE_ALERT_TIMEOUT_MS: int(10_000, 100),
  SLUICE_ALERT_CONCURRENCY: int(8, 1),
  SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS: z.enum(["true", "false"]).default("false"),
  SLUICE_MIGRATION_LEASE_MS: int(30_000, 100),
  SLUICE_MIGRATION_LOCK_TIMEOUT_MS: int(500, 1),
  SLUICE_MIGRATION_STATEMENT_TIMEOUT_MS: int(600_000, 1),
  SLUICE_SCHEMA_WAIT_MS: int(300_000),
  SLUICE_NODE_HEARTBEAT_MS: int(5_000, 100),
  SLUICE_NODE_AGE_OUT_MS: int(30_000, 300),
  SLUICE_UNREGISTERED_NODE_AGE_OUT_MS: int(600_000, 300),
  SLUICE_DRAIN_DELAY_MS: int(5_000),
  SLUICE_SHUTDOWN_TIMEOUT_MS: int(20_000, 1),
  SLUICE_KEEP_ALIVE_TIMEOUT_MS: int(65_000, 1),
  SLUICE_DB_CONNECT_TIMEOUT_MS: int(2_000, 1),
  SLUICE_CONFIG_FILE: z.string().optional(),
  SLUICE_S3_BUCKET: z.string().min(3).max(63).optional(),
  SLUICE_S3_PREFIX: z.string().default(""),
  SLUICE_S3_ENDPOINT: z
    .url({ protocol: /^https?$/, error: "must be an http(s):// URL" })
    .optional(),
  SLUICE_S3_REGION: z.string().optional(),
  SLUICE_S3_ACCESS_KEY_ID: z.string().optional(),
  SLUICE_S3_SECRET_ACCESS_KEY: z.string().optional(),
  AWS_REGION: z.string().optional(),
  SLUICE_SESSION_IDLE_TIMEOUT_S: int(14 * 24 * 3600, 60),
  SLUICE_SESSION_MAX_AGE_S: int(30 * 24 * 3600, 60),
  SLUICE_SIGN_IN_MAX_FAILURES: int(10, 1),
  SLUICE_SIGN_IN_MAX_FAILURES_PER_ADDRESS: int(100, 1),
  SLUICE_SIGN_IN_WINDOW_S: int(900, 1),
  SLUICE_TRUST_FORWARDED_FOR: z.enum(["true", "false"]).default("false"),
  SLUICE_MAIL_FROM: z.string().min(3).default("Sluice <sluice@localhost>"),
  SLUICE_OIDC_ISSUER: z
    .url({ protocol: /^https?$/, error: "must be an http(s):// URL" })
    .optional(),
  SLUICE_OIDC_CLIENT_ID: z.string().optional(),
  SLUICE_OIDC_CLIENT_SECRET: z.string().optional(),
  SLUICE_OIDC_NAME: z.string().min(1).max(100).default("SSO"),
  SLUICE_OIDC_AUTO_JOIN_DOMAINS: z.string().default(""),
  SLUICE_OIDC_AUTO_JOIN_ORG: z.string().default("sluice"),
  SLUICE_OIDC_AUTO_JOIN_ROLE: z.enum(["member", "admin", "manager", "owner"]).default("member"),
});

/** Single sign-on through an OpenID Connect provider (README "Single sign-on"). */
type OidcConfig = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Label of the sign-in button ("Sign in with {name}"). */
  name: string;
  /** Email domains (lower case) whose users join `autoJoinOrganization` at first sign-in. */
  autoJoinDomains: string[];
  autoJoinOrganization: string;
  autoJoinRole: "member" | "admin" | "manager" | "owner";
};

/** Users, sessions and sign-in (README "Accounts and access"). */
type AccountsConfig = {
  /** A session unused this long ends (s). */
  sessionIdleTimeoutS: number;
  /** A session ends this long after sign-in however it is used (s). */
  sessionMaxAgeS: number;
  /** Failed sign-ins per account, and per client address, in one window before sign-in is refused. */
  maxFailuresPerAccount: number;
  maxFailuresPerAddress: number;
  /** Length of that window (s). */
  failureWindowS: number;
  /** Take the client address from X-Forwarded-For (behind a proxy that sets it). */
  trustForwardedFor: boolean;
  /** Mail for invitations and password resets; null prints or returns the link instead. */
  smtpUrl: string | null;
  mailFrom: string;
  oidc: OidcConfig | null;
};

/** Where blobs live: `SLUICE_DATA_DIR/blobs`, or an S3(-compatible) bucket when `SLUICE_S3_BUCKET` is set. */
type BlobStoreConfig =
  | { kind: "directory" }
  | {
      kind: "s3";
      bucket: string;
      prefix: string;
      endpoint: string | null;
      region: string;
      /** Explicit keys; null leaves credentials to the AWS SDK's chain (env, profile, IAM role). */
      credentials: { accessKeyId: string; secretAccessKey: string } | null;
    };

/** Sluice's configuration, read from the environment once at start. */
export type Config = {
  databaseUrl: string | null;
  redisUrl: string | null;
  port: number;
  /** Port of `/metrics`, apart from the traffic port (0: any free port). */
  metricsPort: number;
  host: string;
  /** Public base URL used in DSNs and links; defaults to http://localhost:{port}. */
  publicUrl: string;
  dataDir: string;
  logLevel: string;
  queuePrefix: string;
  dbPoolSize: number;
  workerConcurrency: number;
  /** Bytes of parsed source maps a worker keeps across events. */
  sourceMapCacheBytes: number;
  /**
   * How ingest stores event payloads: `jsonb` (every release reads it),
   * `compressed` (deflate, a third of the bytes; read from release 0.2.0) or
   * `zstd` (8% more bytes at less than half the CPU; read from release
   * 0.6.0, and written only while every live node reads it:
   * `createPayloadStorageGuard`). Set `compressed` once no 0.1.0 node runs.
   */
  payloadStorage: PayloadStorage;
  /** `maxPending`: requests waiting for a commit past which ingest answers 503 before reading the body. */
  groupCommit: { windowMs: number; maxEvents: number; maxPending: number };
  /** Rate limits and quotas (README "Rate limits and quotas"). */
  quotas: {
    /** How long a limit check waits for others to share its Redis round trip (ms). */
    batchWindowMs: number;
    /** A Redis command slower than this fails open (ms). */
    redisTimeoutMs: number;
    spike: { multiple: number; floorPerMinute: number; trailingMinutes: number };
  };
  sweeper: { intervalMs: number; minAgeMs: number };
  retentionDays: number;
  /** Retention beyond the events' own (docs/operations.md §9). */
  retention: {
    /** Days outcome counters are kept (longer than events: they are small and feed usage stats). */
    outcomesDays: number;
    /** How long detaching a partition waits for its lock on `events` before it retries (ms). */
    lockTimeoutMs: number;
    /** How long a blob stays after its last reference went (ms). */
    blobGraceMs: number;
  };
  limits: Limits;
  /** Request body bytes (on the wire and decoded) one process holds at once before it answers 503 (bytes). */
  maxBytesInFlight: number;
  /** Largest JSON body an API route reads; upload routes keep their own limits (bytes). */
  maxApiBodyBytes: number;
  /** DSN key lookups (known and unknown) an ingest process keeps in memory. */
  keyCacheEntries: number;
  /** Processing failures after which an event is marked failed and no longer retried. */
  maxEventFailures: number;
  /** Issue alert delivery (README "Alerts"). */
  alerts: {
    /** SMTP server for email actions (nodemailer URL); null: email actions fail. */
    smtpUrl: string | null;
    emailFrom: string;
    /** Time one webhook request or SMTP send may take (ms). */
    timeoutMs: number;
    /** Notifications one node sends at once. */
    concurrency: number;
    /**
     * Let webhooks and chat messages go to loopback, private and link-local
     * addresses (a private network's own receivers); off, they are refused
     * when saved and when sent.
     */
    allowPrivateDestinations: boolean;
  };
  migration: {
    leaseMs: number;
    lockTimeoutMs: number;
    statementTimeoutMs: number;
    schemaWaitMs: number;
  };
  /** The node registry (README "Upgrading", docs/operations.md §2.4). */
  fleet: {
    /** How often a node writes its row in `sluice_nodes` (ms). */
    heartbeatMs: number;
    /** A node whose last heartbeat is older than this is dead: not listed, not a blocker (ms). */
    ageOutMs: number;
    /**
     * How long a connection of a release without the registry (application
     * name `sluice`, 0.3.0 and older), once seen, still counts as a live node (ms).
     */
    unregisteredAgeOutMs: number;
  };
  /** Graceful shutdown (README "Deploying and rolling"). */
  shutdown: {
    /** After SIGTERM, how long the node keeps serving while readiness fails (ms). */
    drainDelayMs: number;
    /**
     * Budget for in-flight requests, group commits and active jobs after that
     * (ms). Queue hand-offs after a commit are not waited for (the sweeper
     * enqueues what they missed).
     */
    timeoutMs: number;
  };
  /** Idle keep-alive connections are kept this long, above load balancers' idle timeouts (ms). */
  keepAliveTimeoutMs: number;
  /** How long a query waits for a Postgres connection before ingest answers 503 (ms). */
  dbConnectTimeoutMs: number;
  /** Optional file of KEY=VALUE settings, read at start and again on SIGHUP. */
  configFile: string | null;
  blobStore: BlobStoreConfig;
  accounts: AccountsConfig;
};

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/**
 * Validates the environment and returns the typed config, or every problem
 * at once (`NAME: reason`) so a bad deployment is fixed in one go. Nothing
 * else in Sluice reads `process.env`.
 */
export function readConfig(env: NodeJS.ProcessEnv): ConfigResult {
  const parsed = envSchema.safeParse(stripEmpty(env));
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`),
    };
  }
  const e = parsed.data;
  const oidcParts = [e.SLUICE_OIDC_ISSUER, e.SLUICE_OIDC_CLIENT_ID, e.SLUICE_OIDC_CLIENT_SECRET];
  if (oidcParts.some(Boolean) && !oidcParts.every(Boolean)) {
    return {
      ok: false,
      problems: [
        "SLUICE_OIDC_ISSUER: single sign-on needs SLUICE_OIDC_ISSUER, SLUICE_OIDC_CLIENT_ID and SLUICE_OIDC_CLIENT_SECRET together",
      ],
    };
  }
  return {
    ok: true,
    config: {
      databaseUrl: e.DATABASE_URL ?? null,
      redisUrl: e.REDIS_URL ?? null,
      port: e.PORT,
      metricsPort: e.SLUICE_METRICS_PORT,
      host: e.HOST,
      publicUrl: (e.SLUICE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ""),
      dataDir: resolve(e.SLUICE_DATA_DIR),
      logLevel: e.LOG_LEVEL,
      queuePrefix: e.SLUICE_QUEUE_PREFIX,
      dbPoolSize: e.SLUICE_DB_POOL_SIZE,
      workerConcurrency: e.SLUICE_WORKER_CONCURRENCY,
      sourceMapCacheBytes: e.SLUICE_SOURCEMAP_CACHE_BYTES,
      payloadStorage: e.SLUICE_PAYLOAD_STORAGE,
      groupCommit: {
        windowMs: e.SLUICE_GROUP_COMMIT_WINDOW_MS,
        maxEvents: e.SLUICE_GROUP_COMMIT_MAX_EVENTS,
        maxPending: e.SLUICE_GROUP_COMMIT_MAX_PENDING,
      },
      quotas: {
        batchWindowMs: e.SLUICE_RATE_LIMIT_BATCH_WINDOW_MS,
        redisTimeoutMs: e.SLUICE_RATE_LIMIT_REDIS_TIMEOUT_MS,
        spike: {
          multiple: e.SLUICE_SPIKE_MULTIPLE,
          floorPerMinute: e.SLUICE_SPIKE_FLOOR_PER_MINUTE,
          trailingMinutes: e.SLUICE_SPIKE_TRAILING_MINUTES,
        },
      },
      sweeper: { intervalMs: e.SLUICE_SWEEP_INTERVAL_MS, minAgeMs: e.SLUICE_SWEEP_MIN_AGE_MS },
      retentionDays: e.SLUICE_RETENTION_DAYS,
      retention: {
        outcomesDays: e.SLUICE_OUTCOMES_RETENTION_DAYS,
        lockTimeoutMs: e.SLUICE_RETENTION_LOCK_TIMEOUT_MS,
        blobGraceMs: e.SLUICE_BLOB_GC_GRACE_MS,
      },
      limits: {
        ...defaultLimits,
        maxEnvelopeBytes: e.SLUICE_MAX_ENVELOPE_BYTES,
        maxEventBytes: e.SLUICE_MAX_EVENT_BYTES,
        maxAttachmentBytes: e.SLUICE_MAX_ATTACHMENT_BYTES,
      },
      maxBytesInFlight: e.SLUICE_MAX_BYTES_IN_FLIGHT,
      maxApiBodyBytes: e.SLUICE_MAX_API_BODY_BYTES,
      keyCacheEntries: e.SLUICE_KEY_CACHE_ENTRIES,
      maxEventFailures: e.SLUICE_MAX_EVENT_FAILURES,
      alerts: {
        smtpUrl: e.SLUICE_SMTP_URL ?? null,
        emailFrom: e.SLUICE_ALERT_EMAIL_FROM ?? e.SLUICE_MAIL_FROM,
        timeoutMs: e.SLUICE_ALERT_TIMEOUT_MS,
        concurrency: e.SLUICE_ALERT_CONCURRENCY,
        allowPrivateDestinations: e.SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS === "true",
      },
      migration: {
        leaseMs: e.SLUICE_MIGRATION_LEASE_MS,
        lockTimeoutMs: e.SLUICE_MIGRATION_LOCK_TIMEOUT_MS,
        statementTimeoutMs: e.SLUICE_MIGRATION_STATEMENT_TIMEOUT_MS,
        schemaWaitMs: e.SLUICE_SCHEMA_WAIT_MS,
      },
      fleet: {
        heartbeatMs: e.SLUICE_NODE_HEARTBEAT_MS,
        ageOutMs: e.SLUICE_NODE_AGE_OUT_MS,
        unregisteredAgeOutMs: e.SLUICE_UNREGISTERED_NODE_AGE_OUT_MS,
      },
      shutdown: { drainDelayMs: e.SLUICE_DRAIN_DELAY_MS, timeoutMs: e.SLUICE_SHUTDOWN_TIMEOUT_MS },
      keepAliveTimeoutMs: e.SLUICE_KEEP_ALIVE_TIMEOUT_MS,
      dbConnectTimeoutMs: e.SLUICE_DB_CONNECT_TIMEOUT_MS,
      configFile: e.SLUICE_CONFIG_FILE ?? null,
      blobStore: e.SLUICE_S3_BUCKET
        ? {
            kind: "s3",
            bucket: e.SLUICE_S3_BUCKET,
            prefix: e.SLUICE_S3_PREFIX,
            endpoint: e.SLUICE_S3_ENDPOINT ?? null,
            region: e.SLUICE_S3_REGION ?? e.AWS_REGION ?? "us-east-1",
            credentials:
              e.SLUICE_S3_ACCESS_KEY_ID && e.SLUICE_S3_SECRET_ACCESS_KEY
                ? {
                    accessKeyId: e.SLUICE_S3_ACCESS_KEY_ID,
                    secretAccessKey: e.SLUICE_S3_SECRET_ACCESS_KEY,
                  }
                : null,
          }
        : { kind: "directory" },
      accounts: {
        sessionIdleTimeoutS: e.SLUICE_SESSION_IDLE_TIMEOUT_S,
        sessionMaxAgeS: e.SLUICE_SESSION_MAX_AGE_S,
        maxFailuresPerAccount: e.SLUICE_SIGN_IN_MAX_FAILURES,
        maxFailuresPerAddress: e.SLUICE_SIGN_IN_MAX_FAILURES_PER_ADDRESS,
        failureWindowS: e.SLUICE_SIGN_IN_WINDOW_S,
        trustForwardedFor: e.SLUICE_TRUST_FORWARDED_FOR === "true",
        smtpUrl: e.SLUICE_SMTP_URL ?? null,
        mailFrom: e.SLUICE_MAIL_FROM,
        oidc:
          e.SLUICE_OIDC_ISSUER && e.SLUICE_OIDC_CLIENT_ID && e.SLUICE_OIDC_CLIENT_SECRET
            ? {
                issuer: e.SLUICE_OIDC_ISSUER,
                clientId: e.SLUICE_OIDC_CLIENT_ID,
                clientSecret: e.SLUICE_OIDC_CLIENT_SECRET,
                name: e.SLUICE_OIDC_NAME,
                autoJoinDomains: e.SLUICE_OIDC_AUTO_JOIN_DOMAINS.split(",")
                  .map((d) => d.trim().toLowerCase())
                  .filter(Boolean),
                autoJoinOrganization: e.SLUICE_OIDC_AUTO_JOIN_ORG,
                autoJoinRole: e.SLUICE_OIDC_AUTO_JOIN_ROLE,
              }
            : null,
      },
    },
  };
}

/** Settings whose values `sluice config print` masks. */
const SECRET_SETTINGS = new Set(["SLUICE_S3_SECRET_ACCESS_KEY", "SLUICE_S3_ACCESS_KEY_ID"]);

/**
 * The effective value of every setting (the environment with the defaults
 * filled in), as `KEY=VALUE` lines for `sluice config print`, with secrets
 * masked: passwords in URLs and S3 keys. Unset settings without a default
 * are listed as comments. Assumes `env` passed `readConfig`.
 */
export function printableSettings(env: NodeJS.ProcessEnv): string[] {
  const parsed = envSchema.parse(stripEmpty(env)) as Record<string, unknown>;
  return Object.keys(envSchema.shape)
    .sort()
    .map((key) => {
      const value = parsed[key];
      if (value === undefined) return `# ${key} (unset)`;
      let text = String(value);
      if (SECRET_SETTINGS.has(key)) text = "****";
      else if (key.endsWith("_URL") && /^[a-z]+:\/\//.test(text)) {
        const url = new URL(text);
        if (url.password) url.password = "****";
        text = url.toString();
      }
      return `${key}=${text}`;
    });
}

function stripEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env))
    if (value !== undefined && value !== "") out[key] = value;
  return out;
}

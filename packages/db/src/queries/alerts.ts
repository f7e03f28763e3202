import { randomBytes } from "node:crypto";
import type pg from "pg";
import type { Queryable } from "../database.ts";
import { payloadOfRow } from "../event-payload.ts";

/**
 * Issue alerts (migrations/0009_alert_rules.sql): rules for the API, the
 * counters, firings and deliveries the worker writes inside its grouping
 * transaction, and what the delivery job reads and records.
 */

/** A stored rule; `conditions`, `filters`, `actions` as the rules API validated them. */
export type AlertRuleRow = {
  id: number;
  projectId: number;
  name: string;
  environment: string | null;
  actionMatch: string;
  filterMatch: string;
  frequencyMinutes: number;
  conditions: unknown[];
  filters: unknown[];
  actions: unknown[];
  status: string;
  createdAt: Date;
  updatedAt: Date;
  deliveriesSent: number;
  deliveriesFailed: number;
  /** Deliveries not yet sent nor given up (retrying, or waiting for a node of role alerts). */
  deliveriesPending: number;
  lastDeliveredAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  /** When the rule last fired for an issue (its newest firing), or null. */
  lastFiredAt: Date | null;
};

/** The fields a client sets on a rule. */
export type AlertRuleFields = {
  name: string;
  environment: string | null;
  actionMatch: string;
  filterMatch: string;
  frequencyMinutes: number;
  conditions: unknown[];
  filters: unknown[];
  actions: unknown[];
};

const RULE_COLUMNS = `r.id::int AS id, r.project_id::int AS "projectId", r.name, r.environment,
  r.action_match AS "actionMatch", r.filter_match AS "filterMatch",
  r.frequency_minutes::int AS "frequencyMinutes", r.conditions, r.filters, r.actions, r.status,
  r.created_at AS "createdAt", r.updated_at AS "updatedAt",
  r.deliveries_sent::int AS "deliveriesSent", r.deliveries_failed::int AS "deliveriesFailed",
  (SELECT count(*)::int FROM alert_firings f JOIN alert_deliveries d ON d.firing_id = f.id
    WHERE f.rule_id = r.id AND d.status = 'pending') AS "deliveriesPending",
  r.last_delivered_at AS "lastDeliveredAt", r.last_error AS "lastError",
  r.last_error_at AS "lastErrorAt",
  (SELECT max(f.fired_at) FROM alert_firings f WHERE f.rule_id = r.id) AS "lastFiredAt"`;

/** The project's active rules, oldest first (Sentry lists them so). */
export async function listAlertRules(db: Queryable, projectId: number): Promise<AlertRuleRow[]> {
  const result = await db.query(
    `SELECT ${RULE_COLUMNS} FROM alert_rules r
      WHERE r.project_id = $1 AND r.status = 'active' ORDER BY r.id`,
    [projectId],
  );
  return result.rows;
}

/** The first `limit` active rules of these projects (an organization's rules page), by project then age. */
export async function listAlertRulesOfProjects(
  db: Queryable,
  projectIds: number[],
  limit: number,
): Promise<AlertRuleRow[]> {
  if (projectIds.length === 0) return [];
  const result = await db.query(
    `SELECT ${RULE_COLUMNS} FROM alert_rules r
      WHERE r.project_id = ANY($1::bigint[]) AND r.status = 'active'
      ORDER BY r.project_id, r.id LIMIT $2`,
    [projectIds, limit],
  );
  return result.rows;
}

/** One active rule of the project, or null. */
export async function findAlertRule(
  db: Queryable,
  projectId: number,
  ruleId: number,
): Promise<AlertRuleRow | null> {
  const result = await db.query(
    `SELECT ${RULE_COLUMNS} FROM alert_rules r
      WHERE r.project_id = $1 AND r.id = $2 AND r.status = 'active'`,
    [projectId, ruleId],
  );
  return result.rows[0] ?? null;
}

const fieldParams = (f: AlertRuleFields) => [
  f.name,
  f.environment,
  f.actionMatch,
  f.filterMatch,
  f.frequencyMinutes,
  JSON.stringify(f.conditions),
  JSON.stringify(f.filters),
  JSON.stringify(f.actions),
];

/**
 * Creates a rule unless the project already has `maxRules` active ones
 * (then null). Two concurrent creations may both pass the count: the bound
 * is on cost, not exact.
 */
export async function createAlertRule(
  db: Queryable,
  projectId: number,
  fields: AlertRuleFields,
  maxRules: number,
): Promise<AlertRuleRow | null> {
  const result = await db.query(
    `INSERT INTO alert_rules (project_id, name, environment, action_match, filter_match,
                              frequency_minutes, conditions, filters, actions)
     SELECT $1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb
      WHERE (SELECT count(*) FROM alert_rules WHERE project_id = $1 AND status = 'active') < $10
     RETURNING id::int`,
    [projectId, ...fieldParams(fields), maxRules],
  );
  const id = result.rows[0]?.id;
  return id === undefined ? null : findAlertRule(db, projectId, id);
}

/** Replaces an active rule's fields; null when there is no such rule. */
export async function updateAlertRule(
  db: Queryable,
  projectId: number,
  ruleId: number,
  fields: AlertRuleFields,
): Promise<AlertRuleRow | null> {
  const result = await db.query(
    `UPDATE alert_rules SET name = $3, environment = $4, action_match = $5, filter_match = $6,
            frequency_minutes = $7, conditions = $8::jsonb, filters = $9::jsonb,
            actions = $10::jsonb, updated_at = now()
      WHERE project_id = $1 AND id = $2 AND status = 'active'`,
    [projectId, ruleId, ...fieldParams(fields)],
  );
  return result.rowCount === 0 ? null : findAlertRule(db, projectId, ruleId);
}

/** Marks an active rule deleted (it stops firing at once); false when there is none. */
export async function deleteAlertRule(
  db: Queryable,
  projectId: number,
  ruleId: number,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE alert_rules SET status = 'deleted', updated_at = now()
      WHERE project_id = $1 AND id = $2 AND status = 'active'`,
    [projectId, ruleId],
  );
  return (result.rowCount ?? 0) > 0;
}

/** A project's settings of one legacy plugin (`webhooks`), or null when never set. */
export async function findProjectPlugin(
  db: Queryable,
  projectId: number,
  plugin: string,
): Promise<{ enabled: boolean; config: Record<string, unknown> } | null> {
  const result = await db.query(
    "SELECT enabled, config FROM project_plugins WHERE project_id = $1 AND plugin = $2",
    [projectId, plugin],
  );
  return result.rows[0] ?? null;
}

/** Sets a project's plugin settings (the whole config) and whether it is enabled. */
export async function saveProjectPlugin(
  db: Queryable,
  projectId: number,
  plugin: string,
  enabled: boolean,
  config: Record<string, unknown>,
): Promise<void> {
  await db.query(
    `INSERT INTO project_plugins (project_id, plugin, enabled, config) VALUES ($1, $2, $3, $4::jsonb)
     ON CONFLICT (project_id, plugin)
     DO UPDATE SET enabled = EXCLUDED.enabled, config = EXCLUDED.config, updated_at = now()`,
    [projectId, plugin, enabled, JSON.stringify(config)],
  );
}

/**
 * Saves the webhooks plugin of a project (Sentry's legacy
 * `sentry_webhooks`): `urls` (when given, one per line) replace the stored
 * ones, `enabled` is set, and the first save makes the project's signing
 * secret (64 hex characters). Returns the config as stored.
 */
export async function saveWebhookPlugin(
  db: Queryable,
  projectId: number,
  change: { enabled: boolean; urls?: string[] },
): Promise<{ enabled: boolean; config: Record<string, unknown> }> {
  const existing = await findProjectPlugin(db, projectId, "webhooks");
  const config: Record<string, unknown> = {
    ...(existing?.config ?? {}),
    ...(change.urls ? { urls: change.urls.join("\n") } : {}),
  };
  if (typeof config.secret !== "string") config.secret = randomBytes(32).toString("hex");
  await saveProjectPlugin(db, projectId, "webhooks", change.enabled, config);
  return { enabled: change.enabled, config };
}

/** The active rules of these projects, for the worker's evaluation. */
export async function listActiveRulesOf(
  client: Queryable,
  projectIds: number[],
): Promise<AlertRuleRow[]> {
  if (projectIds.length === 0) return [];
  const result = await client.query(
    `SELECT r.id::int AS id, r.project_id::int AS "projectId", r.name, r.environment,
            r.action_match AS "actionMatch", r.filter_match AS "filterMatch",
            r.frequency_minutes::int AS "frequencyMinutes", r.conditions, r.filters, r.actions
       FROM alert_rules r WHERE r.project_id = ANY($1) AND r.status = 'active' ORDER BY r.id`,
    [projectIds],
  );
  return result.rows;
}

/** The newest release each project has seen (Sentry's "latest release", by creation). */
export async function latestReleasesOf(
  client: Queryable,
  projectIds: number[],
): Promise<Map<number, string>> {
  if (projectIds.length === 0) return new Map();
  const result = await client.query(
    `SELECT DISTINCT ON (rp.project_id) rp.project_id::int AS p, r.version
       FROM release_projects rp JOIN releases r ON r.id = rp.release_id
      WHERE rp.project_id = ANY($1)
      ORDER BY rp.project_id, r.created_at DESC, r.id DESC`,
    [projectIds],
  );
  return new Map(result.rows.map((r) => [r.p, r.version]));
}

/** Events and users a batch adds to one counter window. */
export type AlertCountAdd = {
  ruleId: number;
  issueId: number;
  intervalSeconds: number;
  windowStart: Date;
  events: number;
  userKeys: string[];
};

/** A counter key as `addAlertCounts` returns it. */
export function alertCounterKey(
  c: Pick<AlertCountAdd, "ruleId" | "issueId" | "intervalSeconds" | "windowStart">,
): string {
  return `${c.ruleId}/${c.issueId}/${c.intervalSeconds}/${c.windowStart.getTime()}`;
}

/**
 * Adds a batch to the frequency counters and returns each window's totals
 * after it (`alertCounterKey` → events, users). Users count once per
 * window (`alert_rule_users`). Runs in the grouping transaction, after the
 * issues are locked, so concurrent batches of one issue add in turn; rows
 * go in key order, so batches over several issues never deadlock.
 */
export async function addAlertCounts(
  client: pg.PoolClient,
  adds: AlertCountAdd[],
): Promise<Map<string, { events: number; users: number }>> {
  if (adds.length === 0) return new Map();
  const sorted = [...adds].sort((a, b) => alertCounterKey(a).localeCompare(alertCounterKey(b)));
  const users = sorted.flatMap((a) =>
    [...new Set(a.userKeys)].sort().map((u) => ({
      r: a.ruleId,
      i: a.issueId,
      s: a.intervalSeconds,
      w: a.windowStart.toISOString(),
      u,
    })),
  );
  const newUsers = new Map<string, number>();
  if (users.length > 0) {
    const inserted = await client.query(
      `INSERT INTO alert_rule_users (rule_id, issue_id, interval_seconds, window_start, user_key)
       SELECT r, i, s, w, u FROM json_to_recordset($1::json) AS x(r bigint, i bigint, s bigint, w timestamptz, u text)
       ON CONFLICT DO NOTHING
       RETURNING rule_id::int AS r, issue_id::int AS i, interval_seconds::int AS s, window_start AS w`,
      [JSON.stringify(users)],
    );
    for (const row of inserted.rows) {
      const key = alertCounterKey({
        ruleId: row.r,
        issueId: row.i,
        intervalSeconds: row.s,
        windowStart: row.w,
      });
      newUsers.set(key, (newUsers.get(key) ?? 0) + 1);
    }
  }
  const result = await client.query(
    `INSERT INTO alert_rule_counters AS c (rule_id, issue_id, interval_seconds, window_start, events, users)
     SELECT r, i, s, w, n, u FROM json_to_recordset($1::json) AS x(r bigint, i bigint, s bigint, w timestamptz, n bigint, u bigint)
     ON CONFLICT (rule_id, issue_id, interval_seconds, window_start)
     DO UPDATE SET events = c.events + EXCLUDED.events, users = c.users + EXCLUDED.users
     RETURNING rule_id::int AS r, issue_id::int AS i, interval_seconds::int AS s, window_start AS w,
               events::int AS n, users::int AS u`,
    [
      JSON.stringify(
        sorted.map((a) => ({
          r: a.ruleId,
          i: a.issueId,
          s: a.intervalSeconds,
          w: a.windowStart.toISOString(),
          n: a.events,
          u: newUsers.get(alertCounterKey(a)) ?? 0,
        })),
      ),
    ],
  );
  return new Map(
    result.rows.map((row) => [
      alertCounterKey({
        ruleId: row.r,
        issueId: row.i,
        intervalSeconds: row.s,
        windowStart: row.w,
      }),
      { events: row.n, users: row.u },
    ]),
  );
}

/** A firing to record: the unique (rule, issue, trigger key), its event, its deliveries. */
export type AlertFiring = {
  ruleId: number;
  issueId: number;
  triggerKey: string;
  frequencyMinutes: number;
  eventId: string;
  eventReceivedAt: Date;
  deliveries: { actionIndex: number; actionType: string; target: string }[];
};

/**
 * Records a firing and its deliveries (status pending) unless the rule
 * fired for this issue less than `frequencyMinutes` ago or this trigger
 * key was recorded already (the unique key); returns the new delivery ids,
 * empty when it did not fire. Runs in the grouping transaction after the
 * issue's row is locked, so two workers decide one after the other; the
 * unique key holds even without that lock.
 */
export async function recordAlertFiring(
  client: pg.PoolClient,
  firing: AlertFiring,
): Promise<number[]> {
  const inserted = await client.query(
    `INSERT INTO alert_firings (rule_id, issue_id, trigger_key, event_id, event_received_at)
     SELECT $1, $2, $3, $4, $5
      WHERE NOT EXISTS (SELECT 1 FROM alert_firings
                         WHERE rule_id = $1 AND issue_id = $2
                           AND fired_at > now() - make_interval(mins => $6))
     ON CONFLICT (rule_id, issue_id, trigger_key) DO NOTHING
     RETURNING id`,
    [
      firing.ruleId,
      firing.issueId,
      firing.triggerKey,
      firing.eventId,
      firing.eventReceivedAt,
      firing.frequencyMinutes,
    ],
  );
  const firingId = inserted.rows[0]?.id;
  if (firingId === undefined || firing.deliveries.length === 0) return [];
  const deliveries = await client.query(
    `INSERT INTO alert_deliveries (firing_id, action_index, action_type, target)
     SELECT $1, a, t, g FROM json_to_recordset($2::json) AS x(a bigint, t text, g text)
     ON CONFLICT DO NOTHING RETURNING id::int`,
    [
      firingId,
      JSON.stringify(
        firing.deliveries.map((d) => ({ a: d.actionIndex, t: d.actionType, g: d.target })),
      ),
    ],
  );
  return deliveries.rows.map((r) => r.id);
}

/**
 * Pending deliveries to hand to the queue: never enqueued, or enqueued more
 * than `staleMs` ago (Redis lost the job, or it failed for good without
 * being recorded); marks them enqueued now. `SKIP LOCKED`, so nodes polling
 * at once take different rows.
 */
export async function takeDeliveriesToEnqueue(
  pool: Queryable,
  limit: number,
  staleMs: number,
): Promise<{ id: number; stale: boolean }[]> {
  const result = await pool.query(
    `UPDATE alert_deliveries d SET enqueued_at = now()
       FROM (SELECT id, enqueued_at IS NOT NULL AS stale FROM alert_deliveries
              WHERE status = 'pending'
                AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => $2))
              ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED) p
      WHERE d.id = p.id
      RETURNING d.id::int AS id, p.stale`,
    [limit, staleMs / 1000],
  );
  return result.rows;
}

/** Everything one delivery needs to build its message. */
export type DeliveryToSend = {
  id: number;
  status: string;
  actionIndex: number;
  actionType: string;
  target: string;
  idempotencyKey: string;
  attempts: number;
  rule: { id: number; name: string; actions: unknown[]; status: string };
  triggerKey: string;
  issue: {
    id: number;
    shortId: number;
    title: string;
    culprit: string;
    level: string;
    timesSeen: number;
    userCount: number;
  };
  project: { id: number; slug: string; name: string };
  organizationSlug: string;
  event: { eventId: string; payload: Record<string, unknown> | null };
};

/** Loads a delivery with its rule, issue, project, organization and event; null when absent. */
export async function loadDelivery(db: Queryable, id: number): Promise<DeliveryToSend | null> {
  const result = await db.query(
    `SELECT d.id::int AS id, d.status, d.action_index::int AS "actionIndex",
            d.action_type AS "actionType", d.target, d.idempotency_key AS "idempotencyKey",
            d.attempts::int AS attempts, f.trigger_key AS "triggerKey",
            r.id::int AS rule_id, r.name AS rule_name, r.actions AS rule_actions, r.status AS rule_status,
            i.id::int AS issue_id, i.short_id::int AS issue_short_id, i.title, i.culprit, i.level,
            i.times_seen::int AS times_seen, i.user_count::int AS user_count,
            p.id::int AS project_id, p.slug AS project_slug, p.name AS project_name,
            o.slug AS org_slug, replace(f.event_id::text, '-', '') AS event_id,
            e.payload, e.payload_compressed
       FROM alert_deliveries d
       JOIN alert_firings f ON f.id = d.firing_id
       JOIN alert_rules r ON r.id = f.rule_id
       JOIN issues i ON i.id = f.issue_id
       JOIN projects p ON p.id = i.project_id
       JOIN organizations o ON o.id = p.organization_id
       LEFT JOIN events e ON e.project_id = p.id AND e.event_id = f.event_id
                         AND e.received_at = f.event_received_at
      WHERE d.id = $1`,
    [id],
  );
  const row = result.rows[0];
  if (!row) return null;
  let payload: Record<string, unknown> | null = null;
  try {
    payload = payloadOfRow({ payload: row.payload, payloadCompressed: row.payload_compressed });
  } catch {
    // The event is gone (a partition dropped) or unreadable: notify without it.
  }
  return {
    id: row.id,
    status: row.status,
    actionIndex: row.actionIndex,
    actionType: row.actionType,
    target: row.target,
    idempotencyKey: row.idempotencyKey,
    attempts: row.attempts,
    triggerKey: row.triggerKey,
    rule: {
      id: row.rule_id,
      name: row.rule_name,
      actions: row.rule_actions,
      status: row.rule_status,
    },
    issue: {
      id: row.issue_id,
      shortId: row.issue_short_id,
      title: row.title,
      culprit: row.culprit,
      level: row.level,
      timesSeen: row.times_seen,
      userCount: row.user_count,
    },
    project: { id: row.project_id, slug: row.project_slug, name: row.project_name },
    organizationSlug: row.org_slug,
    event: { eventId: row.event_id, payload },
  };
}

/**
 * Records an attempt of a pending delivery: `delivered` (the rule counts
 * it), a failure to retry (`failed: false`: the error is kept on the
 * delivery and the rule), or a failure for good (`failed: true`: the rule
 * counts it). Returns false when the delivery was no longer pending, so a
 * second runner records nothing twice.
 */
export async function recordDeliveryAttempt(
  db: Queryable,
  id: number,
  outcome: { ok: true } | { ok: false; error: string; final: boolean },
): Promise<boolean> {
  const status = outcome.ok ? "delivered" : outcome.final ? "failed" : "pending";
  const result = await db.query(
    `WITH d AS (
       UPDATE alert_deliveries SET status = $2, attempts = attempts + 1,
              last_error = CASE WHEN $3::text IS NULL THEN last_error ELSE $3 END,
              delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
        WHERE id = $1 AND status = 'pending'
        RETURNING firing_id)
     UPDATE alert_rules r
        SET deliveries_sent = deliveries_sent + CASE WHEN $2 = 'delivered' THEN 1 ELSE 0 END,
            deliveries_failed = deliveries_failed + CASE WHEN $2 = 'failed' THEN 1 ELSE 0 END,
            last_delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE last_delivered_at END,
            last_error = COALESCE($3, last_error),
            last_error_at = CASE WHEN $3::text IS NULL THEN last_error_at ELSE now() END
       FROM d JOIN alert_firings f ON f.id = d.firing_id
      WHERE r.id = f.rule_id`,
    [id, status, outcome.ok ? null : outcome.error],
  );
  return (result.rowCount ?? 0) > 0;
}

/**
 * Ends a pending delivery without sending it (status `skipped`, the reason
 * kept as its last error): its recipient is no longer one, e.g. a member
 * removed after the rule fired. The rule's counts and last error are left
 * alone, since nothing failed. Returns false when it was no longer pending.
 */
export async function skipDelivery(db: Queryable, id: number, reason: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE alert_deliveries SET status = 'skipped', attempts = attempts + 1, last_error = $2
      WHERE id = $1 AND status = 'pending'`,
    [id, reason],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Deletes counter windows that ended before `now` (they can no longer fire). */
export async function pruneAlertCounters(db: Queryable, now: Date): Promise<number> {
  const ended = "window_start + make_interval(secs => interval_seconds) < $1";
  const users = await db.query(`DELETE FROM alert_rule_users WHERE ${ended}`, [now]);
  const counters = await db.query(`DELETE FROM alert_rule_counters WHERE ${ended}`, [now]);
  return (users.rowCount ?? 0) + (counters.rowCount ?? 0);
}

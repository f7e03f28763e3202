/**
 * What every notification of one firing says: the rule, the issue (title,
 * culprit, level, count, users, release, environment) and the link to it,
 * `{SLUICE_URL}/organizations/{org}/issues/{id}/`.
 */
export type AlertContext = {
  rule: { id: number; name: string };
  organizationSlug: string;
  project: { id: number; slug: string; name: string };
  issue: {
    id: number;
    shortId: string;
    title: string;
    culprit: string;
    level: string;
    count: number;
    userCount: number;
  };
  event: {
    eventId: string;
    level: string;
    release: string | null;
    environment: string | null;
    message: string;
    logger: string | null;
    tags: [string, string][];
    /** The stored event payload (the legacy webhook sends it whole). */
    payload: Record<string, unknown>;
  };
  /** Why it fired, in words ("A new issue is created"). */
  reason: string;
  issueUrl: string;
};

/** The link with Sentry's `referrer` query, as the webhooks plugin sends it. */
function withReferrer(url: string, referrer: string): string {
  return `${url}?referrer=${referrer}`;
}

/**
 * The legacy webhooks plugin's JSON (getsentry/sentry
 * `src/sentry/plugins/sentry_webhooks/plugin.py`, `get_group_data`): the
 * issue's id, project slug and name, logger and level tags, culprit,
 * message, URL, the rule names that fired, and the event with its tags,
 * `event_id` and `id`.
 */
export function legacyWebhookBody(ctx: AlertContext): Record<string, unknown> {
  const tag = (key: string) => ctx.event.tags.find(([k]) => k === key)?.[1] ?? null;
  return {
    id: String(ctx.issue.id),
    project: ctx.project.slug,
    project_name: ctx.project.name,
    project_slug: ctx.project.slug,
    logger: tag("logger") ?? ctx.event.logger,
    level: tag("level") ?? ctx.event.level,
    culprit: ctx.issue.culprit,
    message: ctx.event.message,
    url: withReferrer(ctx.issueUrl, "webhooks_plugin"),
    triggering_rules: [ctx.rule.name],
    event: {
      ...ctx.event.payload,
      tags: ctx.event.tags,
      event_id: ctx.event.eventId,
      id: ctx.event.eventId,
    },
  };
}

/** The facts every chat message and email lists, label → value. */
function facts(ctx: AlertContext): [string, string][] {
  return [
    ["Project", ctx.project.slug],
    ["Level", ctx.event.level],
    ["Culprit", ctx.issue.culprit || "—"],
    ["Release", ctx.event.release ?? "—"],
    ["Environment", ctx.event.environment ?? "—"],
    ["Events", String(ctx.issue.count)],
    ["Users", String(ctx.issue.userCount)],
    ["Rule", ctx.rule.name],
  ];
}

/** A Slack incoming-webhook message (Block Kit: a header, fields, a link). */
export function slackBody(ctx: AlertContext): Record<string, unknown> {
  const link = withReferrer(ctx.issueUrl, "slack");
  return {
    text: `${ctx.issue.shortId}: ${ctx.issue.title}`,
    blocks: [
      {
        type: "section",
        text: {
          type: "mrkdwn",
          text: `*<${link}|${escapeSlack(ctx.issue.shortId)}: ${escapeSlack(ctx.issue.title)}>*\n${escapeSlack(ctx.reason)}`,
        },
      },
      {
        type: "section",
        fields: facts(ctx).map(([k, v]) => ({ type: "mrkdwn", text: `*${k}*\n${escapeSlack(v)}` })),
      },
    ],
  };
}

/** Slack's three escapes in mrkdwn text (api.slack.com "Formatting text"). */
function escapeSlack(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Discord's level colours for the embed's side bar. */
const COLOURS: Record<string, number> = {
  fatal: 0xd1001f,
  error: 0xe03e2f,
  warning: 0xf2b712,
  info: 0x2788ce,
  debug: 0x8d8d8d,
};

/** A Discord webhook message: one embed (title ≤ 256, fields ≤ 1024 chars, Discord's limits). */
export function discordBody(ctx: AlertContext): Record<string, unknown> {
  return {
    content: ctx.reason.slice(0, 2000),
    embeds: [
      {
        title: `${ctx.issue.shortId}: ${ctx.issue.title}`.slice(0, 256),
        url: withReferrer(ctx.issueUrl, "discord"),
        color: COLOURS[ctx.event.level] ?? COLOURS.error,
        fields: facts(ctx).map(([name, value]) => ({
          name,
          value: value.slice(0, 1024),
          inline: true,
        })),
      },
    ],
    allowed_mentions: { parse: [] },
  };
}

/** A Microsoft Teams incoming-webhook message: an Adaptive Card with the facts and a link. */
export function teamsBody(ctx: AlertContext): Record<string, unknown> {
  return {
    type: "message",
    attachments: [
      {
        contentType: "application/vnd.microsoft.card.adaptive",
        content: {
          $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          type: "AdaptiveCard",
          version: "1.4",
          body: [
            {
              type: "TextBlock",
              size: "Medium",
              weight: "Bolder",
              wrap: true,
              text: `${ctx.issue.shortId}: ${ctx.issue.title}`,
            },
            { type: "TextBlock", wrap: true, text: ctx.reason },
            { type: "FactSet", facts: facts(ctx).map(([title, value]) => ({ title, value })) },
          ],
          actions: [
            {
              type: "Action.OpenUrl",
              title: "Open in Sluice",
              url: withReferrer(ctx.issueUrl, "msteams"),
            },
          ],
        },
      },
    ],
  };
}

/** An email: subject `[Sluice] SHORT-ID - title`, a text part and an HTML part. */
export function emailMessage(ctx: AlertContext): { subject: string; text: string; html: string } {
  const link = withReferrer(ctx.issueUrl, "alert_email");
  const rows = facts(ctx);
  const subject = `[Sluice] ${ctx.issue.shortId} - ${ctx.issue.title}`
    .replace(/[\r\n]+/g, " ")
    .slice(0, 250);
  const text = [
    `${ctx.issue.shortId}: ${ctx.issue.title}`,
    ctx.reason,
    "",
    ...rows.map(([k, v]) => `${k}: ${v}`),
    "",
    link,
  ].join("\n");
  const html = `<h2><a href="${escapeHtml(link)}">${escapeHtml(ctx.issue.shortId)}: ${escapeHtml(ctx.issue.title)}</a></h2>
<p>${escapeHtml(ctx.reason)}</p>
<table>${rows.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("")}</table>
<p><a href="${escapeHtml(link)}">View the issue</a></p>`;
  return { subject, text, html };
}

function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

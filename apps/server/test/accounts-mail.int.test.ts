import type { AddressInfo } from "node:net";
import { createApiToken } from "@sluice/db";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiToken, newApiToken } from "../src/accounts/auth-tokens.ts";
import { SESSION_CACHE_TTL_MS } from "../src/accounts/sessions.ts";
import { createUserCommand, firstOwnerLink, resetPasswordCommand } from "../src/commands/users.ts";
import { createTestUser, signInForm } from "./accounts-harness.ts";
import { api, startTestSluice, type TestSluice, waitFor } from "./harness.ts";
import { freePort } from "./rolling-harness.ts";

type Mail = { to: string[]; subject: string; text: string };

/** A real SMTP server (smtp-server) on a free loopback port, keeping every message. */
async function startSmtp(): Promise<{ url: string; mails: Mail[]; stop(): Promise<void> }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    // Plain SMTP: nodemailer would upgrade to TLS and refuse the test's self-signed certificate.
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      let raw = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        raw += chunk;
      });
      stream.on("end", () => {
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          ...parseMail(raw),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The subject and plain-text body of a one-part message (quoted-printable decoded). */
function parseMail(raw: string): { subject: string; text: string } {
  const split = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, " ");
  let text = raw.slice(split + 4);
  if (/^content-transfer-encoding:\s*quoted-printable/im.test(head))
    text = text
      .replace(/=\r?\n/g, "")
      .replace(/=([0-9A-F]{2})/g, (_, hex: string) =>
        String.fromCharCode(Number.parseInt(hex, 16)),
      );
  return { subject: head.match(/^subject:\s*(.*)$/im)?.[1] ?? "", text };
}

const linkIn = (mail: Mail, path: string) => {
  const link = mail.text.match(new RegExp(`https?://\\S+${path}[A-Za-z0-9_-]+/`))?.[0];
  if (!link) throw new Error(`no ${path} link in: ${mail.text}`);
  return link;
};

/** Posts a page's form as a browser would (same-site Origin). */
const postForm = (url: string, fields: Record<string, string>, cookie = "") =>
  fetch(url, {
    method: "POST",
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      origin: new URL(url).origin,
      ...(cookie ? { cookie } : {}),
    },
    body: new URLSearchParams(fields),
  });

const sessionCookie = (response: Response) =>
  response.headers
    .getSetCookie()
    .find((c) => c.startsWith("sluice_session="))
    ?.split(";")[0] ?? null;

const meOf = async (t: TestSluice, cookie: string) => {
  const response = await fetch(`${t.url}/api/0/users/me/`, { headers: { cookie } });
  return response.status === 200 ? ((await response.json()) as { email: string }) : null;
};

/**
 * An instance-admin token (of no organization) that may invite: the
 * harness's `t.token` has the default scopes, without `member:*`.
 */
async function memberAdmin(t: TestSluice): Promise<TestSluice> {
  const token = newApiToken();
  await createApiToken(t.services.db.orm, hashApiToken(token), MEMBER_SCOPES, "members");
  return { ...t, token };
}
const MEMBER_SCOPES = ["org:read", "member:read", "member:invite", "member:write"];

const invite = async (t: TestSluice, email: string, orgRole = "member") =>
  api(await memberAdmin(t), "/api/0/organizations/sluice/members/", {
    method: "POST",
    body: JSON.stringify({ email, orgRole }),
  });

describe("invitations and password links by mail (a real SMTP server)", () => {
  let t: TestSluice;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  beforeAll(async () => {
    smtp = await startSmtp();
    t = await startTestSluice({
      redis: false,
      env: { SLUICE_SMTP_URL: smtp.url, SLUICE_MAIL_FROM: "Sluice <sluice@test.example>" },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await smtp?.stop();
  });

  const mailTo = async (address: string, count = 1) => {
    await waitFor(
      async () => smtp.mails.filter((m) => m.to.includes(address)).length >= count,
      10_000,
      `mail to ${address}`,
    );
    return smtp.mails.filter((m) => m.to.includes(address))[count - 1] as Mail;
  };

  it("mails an invitation, accepted once: the new user is signed in and no longer pending", async () => {
    const response = await invite(t, "New.Person@Example.com", "admin");
    expect(response.status).toBe(201);
    const member = (await response.json()) as { id: string; pending: boolean; inviteLink?: string };
    expect(member.pending).toBe(true);
    expect(member.inviteLink).toBeUndefined();

    const mail = await mailTo("new.person@example.com");
    expect(mail.subject).toContain("sluice");
    expect(mail.text).toContain("as admin");
    const link = linkIn(mail, "/accept/");
    expect(link.startsWith(`${t.url}/accept/`)).toBe(true);

    const page = await fetch(link);
    expect(page.status).toBe(200);
    const form = await page.text();
    expect(form).toContain("<h1>Accept the invitation</h1>");
    expect(form).toContain("new.person@example.com");
    expect(form).toContain('<label for="password">');

    const weak = await postForm(link, { password: "short" });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toMatch(/role="alert"[^>]*>The password must be at least 8/);

    const accepted = await postForm(link, { password: "a good long password" });
    expect(accepted.status).toBe(303);
    expect(accepted.headers.get("location")).toBe("/organizations/sluice/issues/");
    const cookie = sessionCookie(accepted);
    expect(cookie).not.toBeNull();
    expect((await meOf(t, cookie as string))?.email).toBe("new.person@example.com");

    const list = await api(await memberAdmin(t), "/api/0/organizations/sluice/members/");
    const members = (await list.json()) as {
      id: string;
      pending: boolean;
      orgRole: string;
    }[];
    const now = members.find((m) => m.id === member.id);
    expect(now).toMatchObject({ pending: false, orgRole: "admin" });
    expect((await signInForm(t, "new.person@example.com", "a good long password")).cookie).toMatch(
      /^sluice_session=/,
    );

    // The link works once.
    const again = await fetch(link);
    expect(again.status).toBe(404);
    expect(await again.text()).toContain("This invitation has expired or was used already.");
    const replay = await postForm(link, { password: "another long password" });
    expect(replay.status).toBe(404);
    expect(sessionCookie(replay)).toBeNull();
  });

  it("an invitation of an existing account asks for its password and joins it", async () => {
    await createTestUser(t, "known@example.com", "other-org", "member");
    const response = await invite(t, "known@example.com");
    expect(response.status).toBe(201);
    const link = linkIn(await mailTo("known@example.com"), "/accept/");
    const wrong = await postForm(link, { password: "not the password" });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain("This address has an account already");
    const accepted = await postForm(link, { password: "correct horse battery" });
    expect(accepted.status).toBe(303);
    const cookie = sessionCookie(accepted) as string;
    const orgs = await fetch(`${t.url}/api/0/organizations/`, { headers: { cookie } });
    expect(((await orgs.json()) as { slug: string }[]).map((o) => o.slug).sort()).toEqual([
      "other-org",
      "sluice",
    ]);
  });

  it("a signed-in viewer can accept an invitation (the form carries the CSRF token)", async () => {
    await createTestUser(t, "signed.in@example.com", "other-org", "member");
    const session = await signInForm(t, "signed.in@example.com");
    expect((await invite(t, "signed.in@example.com")).status).toBe(201);
    const link = linkIn(await mailTo("signed.in@example.com"), "/accept/");
    const page = await (await fetch(link, { headers: { cookie: session.cookie } })).text();
    const csrf = page.match(/name="csrf" value="([^"]+)"/)?.[1];
    expect(csrf).toBe(session.csrf);
    const accepted = await postForm(
      link,
      { csrf: csrf as string, password: "correct horse battery" },
      session.cookie,
    );
    expect(accepted.status).toBe(303);
  });

  it("users create without a password mails a set-password link that sets it and signs in", async () => {
    const result = await createUserCommand(t.services, {
      email: "cli.user@example.com",
      orgSlug: "sluice",
      role: "member",
      password: null,
    });
    expect(result).toMatchObject({ created: true, mailed: true });
    const mail = await mailTo("cli.user@example.com");
    const link = linkIn(mail, "/auth/set-password/");
    expect(result.setPasswordLink).toBe(link);

    const page = await fetch(link);
    expect(page.status).toBe(200);
    const form = await page.text();
    expect(form).toContain("<h1>Set a password</h1>");
    expect(form).toContain("cli.user@example.com");
    // No password yet: the form cannot sign in.
    const before = await postForm(`${t.url}/auth/login/`, {
      email: "cli.user@example.com",
      password: "my new password",
    });
    expect(before.status).toBe(401);

    const set = await postForm(link, { password: "my new password" });
    expect(set.status).toBe(303);
    expect(await meOf(t, sessionCookie(set) as string)).toMatchObject({
      email: "cli.user@example.com",
    });
    await signInForm(t, "cli.user@example.com", "my new password");
    expect((await fetch(link)).status).toBe(404);
    expect((await postForm(link, { password: "yet another password" })).status).toBe(404);
  });

  it("reset-password mails a link; the new password revokes the old sessions and signs in", async () => {
    await createTestUser(t, "forgetful@example.com");
    const old = await signInForm(t, "forgetful@example.com");
    expect(await meOf(t, old.cookie)).not.toBeNull();

    const { link, mailed } = await resetPasswordCommand(t.services, "Forgetful@example.com");
    expect(mailed).toBe(true);
    const mail = await mailTo("forgetful@example.com");
    expect(mail.subject).toBe("Reset your Sluice password");
    expect(linkIn(mail, "/auth/set-password/")).toBe(link);

    const set = await postForm(link, { password: "a brand new password" });
    expect(set.status).toBe(303);
    expect(await meOf(t, sessionCookie(set) as string)).not.toBeNull();
    // Revoked on every node within the session cache's lifetime.
    await waitFor(
      async () => (await meOf(t, old.cookie)) === null,
      SESSION_CACHE_TTL_MS + 3_000,
      "old session revoked",
    );
    await signInForm(t, "forgetful@example.com", "a brand new password");
    const oldPassword = await postForm(`${t.url}/auth/login/`, {
      email: "forgetful@example.com",
      password: "correct horse battery",
    });
    expect(oldPassword.status).toBe(401);
    expect((await postForm(link, { password: "once more please" })).status).toBe(404);
  });

  it("refuses a forged set-password link with a clear page", async () => {
    const page = await fetch(`${t.url}/auth/set-password/${"x".repeat(43)}/`);
    expect(page.status).toBe(404);
    expect(await page.text()).toContain("This link has expired or was used already.");
  });
});

describe("without SMTP, or with an SMTP server that is down", () => {
  let t: TestSluice;
  let down: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    // Nothing listens there: sending fails at once.
    down = await startTestSluice({
      redis: false,
      env: { SLUICE_SMTP_URL: `smtp://127.0.0.1:${await freePort()}` },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await down?.stop();
  });

  it("the first-owner link creates the owner of sluice, then stops working", async () => {
    const { rows } = await t.sql.query("SELECT count(*)::int AS n FROM users");
    expect(rows[0].n).toBe(0);
    const link = (await firstOwnerLink(t.services)) as string;
    const spare = (await firstOwnerLink(t.services)) as string;
    expect(link).toMatch(new RegExp(`^${t.url}/auth/setup/[A-Za-z0-9_-]+/$`));

    const page = await fetch(link);
    expect(page.status).toBe(200);
    const form = await page.text();
    expect(form).toContain("<h1>Create the first owner</h1>");
    expect(form).toContain('<label for="email">');
    expect(form).toContain('<label for="password">');

    const bad = await postForm(link, { email: "not an address", password: "long enough pw" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("Enter a valid email address.");

    const created = await postForm(link, { email: "Boss@Example.com", password: "owner password" });
    expect(created.status).toBe(303);
    expect(created.headers.get("location")).toBe("/organizations/sluice/issues/");
    const cookie = sessionCookie(created) as string;
    expect((await meOf(t, cookie))?.email).toBe("boss@example.com");
    const members = await fetch(`${t.url}/api/0/organizations/sluice/members/`, {
      headers: { cookie },
    });
    expect(((await members.json()) as { email: string; orgRole: string }[])[0]).toMatchObject({
      email: "boss@example.com",
      orgRole: "owner",
    });

    expect(await firstOwnerLink(t.services)).toBeNull();
    for (const used of [link, spare]) {
      const again = await fetch(used);
      expect(again.status).toBe(404);
      expect(await again.text()).toContain("/auth/login/");
      const post = await postForm(used, { email: "intruder@example.com", password: "owner pw 2" });
      expect(post.status).toBe(404);
      expect(await post.text()).toContain('href="/auth/login/"');
      expect(sessionCookie(post)).toBeNull();
    }
    const { rows: after } = await t.sql.query("SELECT email FROM users");
    expect(after.map((r) => r.email)).toEqual(["boss@example.com"]);
  });

  it("returns the invitation link in the answer when no SMTP server is configured", async () => {
    const response = await invite(t, "nomail@example.com");
    expect(response.status).toBe(201);
    const { inviteLink } = (await response.json()) as { inviteLink?: string };
    expect(inviteLink).toMatch(new RegExp(`^${t.url}/accept/[A-Za-z0-9_-]+/$`));
    expect((await fetch(inviteLink as string)).status).toBe(200);
  });

  it("users create returns the set-password link unmailed", async () => {
    const result = await createUserCommand(t.services, {
      email: "printed@example.com",
      orgSlug: "sluice",
      role: "member",
      password: null,
    });
    expect(result.mailed).toBe(false);
    expect(result.setPasswordLink).toMatch(/\/auth\/set-password\/[A-Za-z0-9_-]+\/$/);
  });

  it("hands over the link instead of failing when the SMTP server cannot be reached", async () => {
    const response = await invite(down, "unlucky@example.com");
    expect(response.status).toBe(201);
    const { inviteLink } = (await response.json()) as { inviteLink?: string };
    expect(inviteLink).toMatch(/\/accept\/[A-Za-z0-9_-]+\/$/);
    const reset = await createUserCommand(down.services, {
      email: "unlucky2@example.com",
      orgSlug: "sluice",
      role: "member",
      password: null,
    });
    expect(reset.mailed).toBe(false);
    expect(reset.setPasswordLink).toMatch(/\/auth\/set-password\//);
  });
});

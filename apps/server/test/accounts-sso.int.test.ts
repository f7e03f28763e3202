import type { Server } from "node:http";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSluice, type TestSluice } from "./harness.ts";
import { freePort } from "./rolling-harness.ts";

const CLIENT_ID = "sluice-test";
const CLIENT_SECRET = "a-client-secret-long-enough-for-hs256-0123456789";

/** The provider's accounts: the claims `findAccount` answers with. */
const ACCOUNTS: Record<string, { email: string; email_verified: boolean; name: string }> = {
  ada: { email: "Ada@Corp.example", email_verified: true, name: "Ada Lovelace" },
  grace: { email: "grace@other.example", email_verified: true, name: "Grace Hopper" },
  mallory: { email: "mallory@corp.example", email_verified: false, name: "Mallory" },
};

/**
 * A real OpenID Connect provider (oidc-provider) on `port` with one
 * confidential client whose redirect URI is Sluice's callback, and its
 * development interactions (a login form taking any account id, then a
 * consent form) that the test drives with fetch.
 */
async function startProvider(port: number, sluiceUrl: string): Promise<Server> {
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${sluiceUrl}/auth/sso/callback/`],
        grant_types: ["authorization_code"],
        response_types: ["code"],
      },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    async findAccount(_ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
    pkce: { required: () => true },
    cookies: { keys: ["test-cookie-key-0123456789abcdef"] },
    features: { devInteractions: { enabled: true } },
    // Lifetimes given, so the provider does not warn about its defaults.
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
  });
  return new Promise((resolve) => {
    const server = provider.listen(port, "127.0.0.1", () => resolve(server));
  });
}

/** A browser's cookies, per host and port (the provider and Sluice share 127.0.0.1). */
class CookieJar {
  private readonly byHost = new Map<string, Map<string, string>>();

  header(url: URL): string {
    const jar = this.byHost.get(url.host);
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join("; ") : "";
  }

  store(url: URL, response: Response): void {
    const jar = this.byHost.get(url.host) ?? new Map<string, string>();
    this.byHost.set(url.host, jar);
    for (const line of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === "") jar.delete(name);
      else jar.set(name, value);
    }
  }
}

/**
 * Signs in to Sluice through the provider as `accountId`, as a browser
 * would: follows every redirect keeping cookies per host, and submits the
 * provider's login and consent forms. Returns Sluice's answer to the
 * callback (not followed) and Sluice's session cookie, if it set one.
 */
async function ssoSignIn(
  t: TestSluice,
  accountId: string,
  rewriteCallback: (url: URL) => URL = (url) => url,
  options: { start?: string; abort?: boolean } = {},
): Promise<{ response: Response; cookie: string | null }> {
  const jar = new CookieJar();
  let url = new URL(`${t.url}${options.start ?? "/auth/sso/"}`);
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const isCallback = url.pathname === "/auth/sso/callback/";
    if (isCallback) url = rewriteCallback(url);
    const response = await fetch(url, {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers as Record<string, string>), cookie: jar.header(url) },
    });
    jar.store(url, response);
    if (isCallback) {
      const set = response.headers.getSetCookie().find((c) => c.startsWith("sluice_session="));
      return { response, cookie: set ? (set.split(";")[0] as string) : null };
    }
    init = {};
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get("location") as string, url);
      continue;
    }
    const page = await response.text();
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${page}`);
    // A development interaction of the provider: the login form, then consent.
    const action = page.match(/<form[^>]*action="([^"]+)"/)?.[1];
    const prompt = page.match(/name="prompt" value="(\w+)"/)?.[1];
    if (!action || !prompt) throw new Error(`no interaction form at ${url}: ${page}`);
    if (options.abort) {
      // The provider's "Cancel": it sends the browser back with error=access_denied.
      url = new URL(`${url.pathname.replace(/\/$/, "")}/abort`, url);
      continue;
    }
    url = new URL(action, url);
    init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(
        prompt === "login" ? { prompt, login: accountId, password: "any" } : { prompt },
      ).toString(),
    };
  }
  throw new Error("too many redirects");
}

const me = async (t: TestSluice, cookie: string) => {
  const response = await fetch(`${t.url}/api/0/users/me/`, { headers: { cookie } });
  expect(response.status).toBe(200);
  return (await response.json()) as { id: string; email: string; name: string };
};

const organizationSlugs = async (t: TestSluice, cookie: string) => {
  const response = await fetch(`${t.url}/api/0/organizations/`, { headers: { cookie } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { slug: string }[]).map((o) => o.slug);
};

describe("single sign-on with OpenID Connect against a real provider (oidc-provider)", () => {
  let t: TestSluice;
  let provider: Server;
  beforeAll(async () => {
    // Sluice takes its port from the kernel, so the provider's port is
    // picked first: Sluice discovers the provider only at the first sign-in.
    const providerPort = await freePort();
    t = await startTestSluice({
      redis: false,
      env: {
        SLUICE_OIDC_ISSUER: `http://127.0.0.1:${providerPort}`,
        SLUICE_OIDC_CLIENT_ID: CLIENT_ID,
        SLUICE_OIDC_CLIENT_SECRET: CLIENT_SECRET,
        SLUICE_OIDC_NAME: "Corp ID",
        SLUICE_OIDC_AUTO_JOIN_DOMAINS: "corp.example",
        SLUICE_OIDC_AUTO_JOIN_ORG: "sluice",
        SLUICE_OIDC_AUTO_JOIN_ROLE: "admin",
      },
    });
    provider = await startProvider(providerPort, t.url);
  });
  afterAll(async () => {
    provider?.closeAllConnections();
    await new Promise((r) => provider?.close(r));
    await t?.stop();
  });

  it("offers “Sign in with <name>” on the sign-in page", async () => {
    const page = await (await fetch(`${t.url}/auth/login/`)).text();
    expect(page).toContain('href="/auth/sso/"');
    expect(page).toContain("Sign in with Corp ID");
  });

  it("signs in a new user whose address the provider verified; the session works on the API", async () => {
    const { response, cookie } = await ssoSignIn(t, "ada");
    expect(response.status).toBe(302);
    expect(cookie).not.toBeNull();
    const user = await me(t, cookie as string);
    expect(user.email).toBe("ada@corp.example");
    expect(user.name).toBe("Ada Lovelace");
  });

  it("finds the same user when the same subject signs in again, even with a new address", async () => {
    const first = await ssoSignIn(t, "ada");
    const second = await ssoSignIn(t, "ada");
    const a = await me(t, first.cookie as string);
    const b = await me(t, second.cookie as string);
    expect(b.id).toBe(a.id);
    // Matched by (issuer, subject), not by address: a changed address at
    // the provider is still the same user.
    const account = ACCOUNTS.ada as { email: string };
    account.email = "ada.lovelace@corp.example";
    try {
      const third = await ssoSignIn(t, "ada");
      expect((await me(t, third.cookie as string)).id).toBe(a.id);
    } finally {
      account.email = "Ada@Corp.example";
    }
    const { rows } = await t.sql.query("SELECT count(*)::int AS n FROM users WHERE email = $1", [
      "ada@corp.example",
    ]);
    expect(rows[0].n).toBe(1);
  });

  it("joins the organization of its email domain with the default role; another domain joins none", async () => {
    const ada = await ssoSignIn(t, "ada");
    expect(await organizationSlugs(t, ada.cookie as string)).toEqual(["sluice"]);
    const { rows } = await t.sql.query(
      "SELECT m.role FROM organization_members m JOIN users u ON u.id = m.user_id WHERE u.email = $1",
      ["ada@corp.example"],
    );
    expect(rows.map((r) => r.role)).toEqual(["admin"]);

    const grace = await ssoSignIn(t, "grace");
    expect(grace.response.status).toBe(302);
    expect((await me(t, grace.cookie as string)).email).toBe("grace@other.example");
    expect(await organizationSlugs(t, grace.cookie as string)).toEqual([]);
  });

  it("refuses an address the provider did not verify, with a clear page", async () => {
    const { response, cookie } = await ssoSignIn(t, "mallory");
    expect(response.status).toBe(400);
    expect(cookie).toBeNull();
    const page = await response.text();
    expect(page).toContain("<h1>Sign in</h1>");
    expect(page).toContain('role="alert"');
    expect(page).toContain("did not confirm your email address");
    const { rows } = await t.sql.query("SELECT count(*)::int AS n FROM users WHERE email = $1", [
      "mallory@corp.example",
    ]);
    expect(rows[0].n).toBe(0);
  });

  it("returns to the page it started from (`next`), never off the site", async () => {
    const start = "/auth/sso/?next=%2Forganizations%2Fsluice%2Fissues%2F%3Fquery%3Dis%3Aunresolved";
    const { response } = await ssoSignIn(t, "ada", undefined, { start });
    expect(response.headers.get("location")).toBe(
      "/organizations/sluice/issues/?query=is:unresolved",
    );
    const away = await ssoSignIn(t, "ada", undefined, { start: "/auth/sso/?next=//evil.example/" });
    expect(away.response.headers.get("location")).toBe("/organizations/sluice/issues/");
  });

  it("shows a clear page when the person cancels at the provider", async () => {
    const { response, cookie } = await ssoSignIn(t, "ada", undefined, { abort: true });
    expect(response.status).toBe(400);
    expect(cookie).toBeNull();
    const page = await response.text();
    expect(page).toContain("<h1>Sign in</h1>");
    expect(page).toMatch(/role="alert"[^>]*>The single sign-on provider refused the sign-in/);
  });

  it("refuses a tampered or unknown state", async () => {
    for (const state of ["tampered", ""]) {
      const { response, cookie } = await ssoSignIn(t, "ada", (url) => {
        const changed = new URL(url);
        if (state) changed.searchParams.set("state", state);
        else changed.searchParams.delete("state");
        return changed;
      });
      expect(response.status).toBe(400);
      expect(cookie).toBeNull();
      expect(await response.text()).toContain("This sign-in has expired or was not started here");
    }
  });

  it("refuses a callback replayed after it signed in (the state works once)", async () => {
    let replay: URL | null = null;
    const first = await ssoSignIn(t, "ada", (url) => {
      replay = url;
      return url;
    });
    expect(first.cookie).not.toBeNull();
    const again = await fetch(replay as unknown as URL, { redirect: "manual" });
    expect(again.status).toBe(400);
    expect(again.headers.getSetCookie()).toEqual([]);
  });
});

describe("single sign-on not configured, or its provider down", () => {
  let t: TestSluice;
  let down: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
    down = await startTestSluice({
      redis: false,
      env: {
        // Nothing listens there.
        SLUICE_OIDC_ISSUER: `http://127.0.0.1:${await freePort()}`,
        SLUICE_OIDC_CLIENT_ID: CLIENT_ID,
        SLUICE_OIDC_CLIENT_SECRET: CLIENT_SECRET,
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await down?.stop();
  });

  it("says so, with the password form, when the provider cannot be reached", async () => {
    const response = await fetch(`${down.url}/auth/sso/`, { redirect: "manual" });
    expect(response.status).toBe(503);
    const page = await response.text();
    expect(page).toContain("The single sign-on provider cannot be reached. Try again later.");
    expect(page).toContain('<label for="password">');
    expect(page).toContain("Sign in with SSO");
  });

  it("shows no “Sign in with …” and answers /auth/sso/ with 404", async () => {
    const page = await (await fetch(`${t.url}/auth/login/`)).text();
    expect(page).toContain("<h1>Sign in</h1>");
    expect(page).not.toContain("Sign in with");
    expect(page).not.toContain("/auth/sso/");
    const sso = await fetch(`${t.url}/auth/sso/`, { redirect: "manual" });
    expect(sso.status).toBe(404);
    const text = await sso.text();
    expect(text).toContain("Single sign-on is not configured");
    expect(text).toContain('href="/auth/login/"');
  });
});

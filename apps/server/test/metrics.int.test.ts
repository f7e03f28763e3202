import { METHODS, request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSluice, type TestSluice } from "./harness.ts";

/** One raw request (any method Node's parser takes), answered or refused; resolves with the status. */
function send(url: string, method: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method, headers: { Connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** The series of one metric family in a scrape (`name{labels} value` lines). */
function series(scrape: string, name: string): string[] {
  return scrape.split("\n").filter((line) => line.startsWith(`${name}{`));
}

describe("HTTP metrics labels", () => {
  let t: TestSluice;
  beforeAll(async () => {
    t = await startTestSluice({ redis: false });
  });
  afterAll(async () => t?.stop());

  it("come from a closed set, whatever methods and paths clients send", async () => {
    const scrape = async () => (await fetch(`${t.metricsUrl}/metrics`)).text();
    const before = await scrape();
    // CONNECT takes Node's tunnel path, never a request handler.
    const methods = METHODS.filter((m) => m !== "CONNECT");
    const sent: string[] = [];
    const random = () => {
      const text = `z${Math.random().toString(36).slice(2, 10)}`;
      sent.push(text);
      return text;
    };
    const paths = [
      () => `/${random()}`,
      () => `/${random()}/${random()}?q=${random()}`,
      () => `/api/${random()}/envelope/`,
      () => `/api/${Math.floor(Math.random() * 1e6)}/store/`,
      () => `/api/0/${random()}/`,
      () => `/api/0/projects/${random()}/${random()}/issues/`,
      () => `/healthz/${random()}`,
    ];
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => {
          const method = methods[(i + j) % methods.length] as string;
          const path = (paths[Math.floor(Math.random() * paths.length)] as () => string)();
          return send(`${t.url}${path}`, method);
        }),
      );
    }
    const after = await scrape();
    const added = (name: string) => series(after, name).length - series(before, name).length;
    for (const line of series(after, "sluice_http_requests_total")) {
      expect(line).toMatch(/method="(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|other)"/);
    }
    expect(after).not.toMatch(/method="(PROPFIND|PURGE|MKCOL|M-SEARCH)"/);
    // Routes are registered patterns, never the request's own path.
    expect(sent.filter((text) => after.includes(text))).toEqual([]);
    expect(added("sluice_http_requests_total")).toBeLessThan(60);
    expect(added("sluice_http_request_duration_seconds_count")).toBeLessThan(40);
  });
});

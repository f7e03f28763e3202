import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../logger.ts";
import { createMetrics } from "../metrics.ts";
import { type DirectRoute, serveDirect } from "./direct-routes.ts";

type Reply = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
};

/** Sends one POST over a fresh connection; `body` may be left unsent by the server's answer. */
function post(port: number, body: string, method = "POST"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: "127.0.0.1", method, path: "/x?a=1" }, (res) => {
      let text = "";
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("serveDirect", () => {
  let server: Server | null = null;
  afterEach(
    () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  );

  async function serve(route: DirectRoute, draining = false) {
    const metrics = createMetrics();
    const lines: string[] = [];
    const log = createLogger("info", "test", {
      destination: { write: (l: string) => lines.push(l) },
    });
    const seen: { path: string; query: string }[] = [];
    server = createServer((req, res) => {
      const [path = "", query = ""] = (req.url ?? "").split("?");
      seen.push({ path, query });
      void serveDirect(route, { incoming: req, path, query }, res, {
        metrics,
        log,
        draining: () => draining,
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as AddressInfo).port, metrics, lines, seen };
  }

  it("writes the answer with its length, and counts it under the route's pattern", async () => {
    const s = await serve({
      pattern: "/x/:id",
      handle: async ({ incoming }) => {
        for await (const _ of incoming);
        return { status: 201, headers: { "X-Test": "yes" }, body: '{"ok":"é"}' };
      },
    });
    const reply = await post(s.port, "hello");
    expect(reply).toMatchObject({ status: 201, body: '{"ok":"é"}' });
    expect(reply.headers["x-test"]).toBe("yes");
    expect(reply.headers["content-length"]).toBe("11");
    // The whole body was read: the connection may be reused.
    expect(reply.headers.connection).toBe("keep-alive");
    expect(s.seen).toEqual([{ path: "/x", query: "a=1" }]);
    const text = await s.metrics.registry.metrics();
    expect(text).toMatch(
      /sluice_http_requests_total\{method="POST",route="\/x\/:id",status="201"\} 1/,
    );
    expect(text).toMatch(
      /sluice_http_request_duration_seconds_count\{method="POST",route="\/x\/:id"\} 1/,
    );
  });

  it("closes the connection after an answer sent before the body's end", async () => {
    const s = await serve({
      pattern: "/x",
      handle: async () => ({ status: 413, headers: {}, body: '{"detail":"too large"}' }),
    });
    const reply = await post(s.port, "x".repeat(1024 * 1024));
    expect(reply.status).toBe(413);
    expect(reply.headers.connection).toBe("close");
  });

  it("keeps the connection of an answer to a request without a body (a preflight)", async () => {
    const s = await serve({
      pattern: "/x",
      handle: async () => ({ status: 200, headers: {}, body: null }),
    });
    expect((await post(s.port, "")).headers.connection).toBe("keep-alive");
    expect((await post(s.port, "", "OPTIONS")).headers.connection).toBe("keep-alive");
  });

  it("closes every connection while the process drains", async () => {
    const s = await serve(
      {
        pattern: "/x",
        handle: async ({ incoming }) => {
          for await (const _ of incoming);
          return { status: 200, headers: {}, body: null };
        },
      },
      true,
    );
    const reply = await post(s.port, "hi");
    expect(reply).toMatchObject({ status: 200, body: "" });
    expect(reply.headers.connection).toBe("close");
  });

  it("answers a handler that throws with a 500 detail and logs it", async () => {
    const s = await serve({
      pattern: "/x",
      handle: async () => {
        throw new Error("boom");
      },
    });
    const reply = await post(s.port, "");
    expect(reply).toMatchObject({ status: 500, body: '{"detail":"internal error"}' });
    expect(s.lines.some((l) => l.includes('"msg":"request failed"'))).toBe(true);
  });

  it("ends the connection instead of crashing on a header Node refuses", async () => {
    const s = await serve({
      pattern: "/x",
      handle: async () => ({ status: 200, headers: { "X-Bad": "a\nb" }, body: "{}" }),
    });
    await expect(post(s.port, "")).rejects.toThrow();
    expect(s.lines.some((l) => l.includes('"msg":"answer could not be written"'))).toBe(true);
  });
});

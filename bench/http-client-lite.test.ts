import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KeepAliveClient, responseEnd, serializeRequest } from "./http-client-lite.ts";

describe("responseEnd", () => {
  const head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n";

  test("ends a content-length body, and waits for its last byte", () => {
    expect(responseEnd(Buffer.from(`${head}{}`))).toEqual({
      status: 200,
      bytes: head.length + 2,
      close: false,
    });
    expect(responseEnd(Buffer.from(`${head}{`))).toBeNull();
    expect(responseEnd(Buffer.from(head.slice(0, -2)))).toBeNull();
  });

  test("ends a chunked body at its last chunk, split anywhere", () => {
    const whole =
      "HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n3\r\n!!!\r\n0\r\n\r\n";
    expect(responseEnd(Buffer.from(whole))).toEqual({
      status: 429,
      bytes: whole.length,
      close: true,
    });
    for (let cut = 0; cut < whole.length; cut++) {
      expect(responseEnd(Buffer.from(whole.slice(0, cut)))).toBeNull();
    }
  });

  test("refuses what it cannot delimit", () => {
    expect(() => responseEnd(Buffer.from("HTTP/1.1 200 OK\r\n\r\n"))).toThrow(/content-length/);
    expect(() => responseEnd(Buffer.from("SSH-2.0 hi\r\n\r\n"))).toThrow(/HTTP/);
  });
});

describe("KeepAliveClient against node:http", () => {
  let server: Server;
  let url: URL;
  const sockets = new Set<unknown>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      sockets.add(req.socket);
      let bytes = 0;
      req.on("data", (d: Buffer) => {
        bytes += d.length;
      });
      req.on("end", () => {
        if (req.url === "/close") res.setHeader("connection", "close");
        res.statusCode = bytes === 5 ? 200 : 400;
        if (req.url === "/chunked") res.write("x");
        res.end(JSON.stringify({ bytes }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = server.address();
    url = new URL(`http://127.0.0.1:${typeof address === "object" ? address?.port : 0}/`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const send = (client: KeepAliveClient, path: string, body: string) =>
    new Promise<number | null>((resolve) =>
      client.send(
        serializeRequest(new URL(path, url), { "content-type": "text/plain" }, Buffer.from(body)),
        resolve,
      ),
    );

  test("reads statuses and reuses a socket for requests one after another", async () => {
    sockets.clear();
    const client = new KeepAliveClient(url);
    expect(await send(client, "/", "hello")).toBe(200);
    expect(await send(client, "/chunked", "hello")).toBe(200);
    expect(await send(client, "/", "bad")).toBe(400);
    expect(sockets.size).toBe(1);
    client.close();
  });

  test("opens a socket per concurrent request, and a new one after the server closes", async () => {
    sockets.clear();
    const client = new KeepAliveClient(url);
    expect(await Promise.all([send(client, "/", "hello"), send(client, "/", "hello")])).toEqual([
      200, 200,
    ]);
    expect(sockets.size).toBe(2);
    expect(await send(client, "/close", "hello")).toBe(200);
    expect(await send(client, "/", "hello")).toBe(200);
    client.close();
  });

  test("queues requests beyond maxSockets until a socket is free", async () => {
    sockets.clear();
    const client = new KeepAliveClient(url, 1);
    const statuses = await Promise.all([
      send(client, "/", "hello"),
      send(client, "/close", "hello"),
      send(client, "/", "bad"),
    ]);
    expect(statuses).toEqual([200, 200, 400]);
    expect(sockets.size).toBe(2);
    client.close();
  });

  test("ends a request with null when its connection fails", async () => {
    const client = new KeepAliveClient(new URL("http://127.0.0.1:1/"));
    expect(await send(client, "/", "hello")).toBeNull();
  });
});

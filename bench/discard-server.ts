/**
 * The HTTP limit: a Hono handler on the same server stack as Sluice that
 * reads each body and discards it. Prints its port, then serves until killed.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";

const app = new Hono();
app.post("*", async (c) => {
  await c.req.arrayBuffer();
  return c.json({});
});
const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
  console.log(JSON.stringify({ port: info.port })),
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));

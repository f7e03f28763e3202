/**
 * The HTTP limit: a handler on the server stack Sluice's ingest routes use
 * (Node's HTTP server, apps/server/src/http/direct-routes.ts) that reads
 * each body and discards it. Prints its port, then serves until killed.
 */
import { createServer } from "node:http";

const server = createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "2" });
    res.end("{}");
  });
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  console.log(JSON.stringify({ port: typeof address === "object" ? address?.port : null }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));

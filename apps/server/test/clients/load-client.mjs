// Open-loop load for the rolling-deploy test: sends envelopes at a fixed
// rate, never retries (like @sentry/node, Python, Go and Ruby SDKs), and
// writes every answer to a JSON file.
// Usage: node load-client.mjs <envelope url> <events per second> <max duration ms> <out.json>
// SIGINT ends the load early: it stops sending, waits for the answers, writes the file.
import { writeFileSync } from "node:fs";

const [url, rateArg, durationArg, out] = process.argv.slice(2);
const rate = Number(rateArg);
const duration = Number(durationArg);
const messages = [
  "checkout failed for cart",
  "payment gateway timeout",
  "inventory sync error",
  "search index stale",
];
const results = [];
const inFlight = new Set();
let sent = 0;

function sendOne() {
  const eventId = crypto.randomUUID().replaceAll("-", "");
  const event = {
    event_id: eventId,
    level: "error",
    platform: "node",
    message: `${messages[sent % messages.length]} ${sent}`,
    tags: { region: "eu-west-1", node: `web-${sent % 7}` },
    user: { id: `user-${sent % 50}` },
    extra: { attempt: sent },
  };
  sent++;
  const body = `{"event_id":"${eventId}","sent_at":"${new Date().toISOString()}"}\n{"type":"event"}\n${JSON.stringify(event)}\n`;
  const started = Date.now();
  const request = fetch(url, { method: "POST", body })
    .then(async (response) => {
      await response.arrayBuffer();
      const retryAfter = response.headers.get("retry-after");
      results.push({
        eventId,
        started,
        ms: Date.now() - started,
        status: response.status,
        retryAfter,
      });
    })
    .catch((error) => {
      results.push({
        eventId,
        started,
        ms: Date.now() - started,
        error: String(error.cause?.code ?? error.message),
      });
    });
  inFlight.add(request);
  request.finally(() => inFlight.delete(request));
}

const begin = Date.now();
await new Promise((resolve) => {
  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - begin) / 1000) * rate);
    while (sent < due) sendOne();
    if (Date.now() - begin >= duration) stop();
  }, 5);
  function stop() {
    clearInterval(tick);
    resolve();
  }
  process.once("SIGINT", stop);
});
await Promise.all(inFlight);
writeFileSync(out, JSON.stringify({ rate, duration, results }));

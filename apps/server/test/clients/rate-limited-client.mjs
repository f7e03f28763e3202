// A real @sentry/node application against a project whose errors are limited
// to 1 per short window: it sends errors and user feedback (another data
// category) and prints how each was answered (`answered <type> <name>
// <status|dropped>`), so the test can tell what the SDK dropped by itself
// while rate limited.
import * as Sentry from "@sentry/node";

const [dsn, waitMs] = process.argv.slice(2);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

Sentry.init({
  dsn,
  integrations: (defaults) => defaults.filter((integration) => integration.name !== "Dedupe"),
});
// The transport answers without a status code when its rate limits dropped the envelope.
Sentry.getClient().on("afterSendEvent", (event, response) => {
  const name = event.message ?? event.contexts?.feedback?.message ?? "feedback";
  console.log(`answered ${event.type ?? "error"} ${name} ${response?.statusCode ?? "dropped"}`);
});

const error = async (name) => {
  Sentry.captureMessage(name);
  await Sentry.flush(2_000);
};
const feedback = async (name) => {
  Sentry.captureFeedback({ message: name });
  await Sentry.flush(2_000);
};

await error("A");
await error("B"); // the server answers 429 for errors: the SDK backs off
await error("C"); // dropped by the SDK, never sent
await feedback("F1"); // another category: still sent
await sleep(Number(waitMs));
await error("D"); // Retry-After has passed: sent again
await feedback("F2");
await Sentry.close(2_000);

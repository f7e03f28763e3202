// A real @sentry/node application that runs a minified bundle and reports
// the error it throws: node bundle-client.mjs <dsn> <bundle.js> <release>.
import { createRequire } from "node:module";
import * as Sentry from "@sentry/node";

const [dsn, bundlePath, release] = process.argv.slice(2);
Sentry.init({ dsn, release, environment: "production", tracesSampleRate: 0 });

// Loaded after init, as an application's own code is, so that the SDK sees
// the debug id snippet `sentry-cli sourcemaps inject` put in the bundle.
const bundle = createRequire(import.meta.url)(bundlePath);
try {
  bundle.main();
} catch (error) {
  Sentry.captureException(error);
}
await Sentry.flush(10_000);

// A real @sentry/node application: sends the scenarios the SDK test asserts on.
import * as Sentry from "@sentry/node";

// Dedupe is off: it drops an event identical to the previous one, and the
// test sends the same error five times on purpose.
Sentry.init({
  dsn: process.argv[2],
  release: "node-client@1.0.0",
  environment: "test",
  tracesSampleRate: 0,
  integrations: (defaults) => defaults.filter((integration) => integration.name !== "Dedupe"),
});

function sameSite() {
  throw new Error("same error every time");
}
function siteA() {
  throw new Error("thrown at two sites");
}
function siteB() {
  throw new Error("thrown at two sites");
}
const capture = (fn, configure) => {
  try {
    fn();
  } catch (error) {
    Sentry.withScope((scope) => {
      configure?.(scope);
      Sentry.captureException(error);
    });
  }
};

for (let i = 0; i < 5; i++) capture(sameSite, (scope) => scope.setUser({ id: `user-${i % 2}` }));
capture(siteA);
capture(siteB);
for (const n of [1231, 77, 5]) Sentry.captureMessage(`order ${n} failed`);
capture(
  () => {
    throw new Error("fingerprinted one");
  },
  (scope) => scope.setFingerprint(["my-fingerprint"]),
);
capture(
  () => {
    throw new TypeError("fingerprinted two");
  },
  (scope) => scope.setFingerprint(["my-fingerprint"]),
);
capture(
  () => {
    throw new Error("with an attachment");
  },
  (scope) =>
    scope.addAttachment({
      filename: "note.txt",
      data: "hello attachment",
      contentType: "text/plain",
    }),
);

await Sentry.flush(10_000);

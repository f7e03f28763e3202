// A real @sentry/browser application, bundled by the browser test and run in
// Chromium: `window.sluiceSend(kind, name)` sends an error or user feedback
// and resolves once the SDK has flushed; `window.sluiceAnswers` lists how each
// was answered (`<type> <name> <status|dropped>`), as the Node client does.
import * as Sentry from "@sentry/browser";

Sentry.init({ dsn: window.SLUICE_DSN, integrations: [] });
window.sluiceAnswers = [];
Sentry.getClient().on("afterSendEvent", (event, response) => {
  const name = event.message ?? event.contexts?.feedback?.message ?? "feedback";
  window.sluiceAnswers.push(
    `${event.type ?? "error"} ${name} ${response?.statusCode ?? "dropped"}`,
  );
});
window.sluiceSend = async (kind, name) => {
  if (kind === "feedback") Sentry.captureFeedback({ message: name });
  else Sentry.captureMessage(name);
  await Sentry.flush(2_000);
};

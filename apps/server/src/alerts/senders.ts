import { createHmac } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import {
  type AlertContext,
  discordBody,
  emailMessage,
  legacyWebhookBody,
  slackBody,
  teamsBody,
} from "@sluice/alert-rules";
import { createTransport, type Transporter } from "nodemailer";
import { assertPublicLiteral, guardedLookup, RefusedDestinationError } from "../outbound-guard.ts";

/** The header that carries each delivery's idempotency key (the same on every attempt). */
const IDEMPOTENCY_HEADER = "Idempotency-Key";
/**
 * The header of the webhook signature: hex HMAC-SHA256 of the raw body with
 * the project's webhooks signing secret, as Sentry's integration platform
 * signs (`Sentry-Hook-Signature`, docs.sentry.io "Webhooks").
 */
const SIGNATURE_HEADER = "Sentry-Hook-Signature";

/** One delivery to send: its action type, target and idempotency key. */
type Outgoing = {
  actionType: string;
  target: string;
  idempotencyKey: string;
  /** The webhooks plugin's signing secret (webhooks only). */
  secret: string | null;
};

/**
 * A failure no retry fixes (a 4xx other than 408, 425 or 429, no SMTP
 * server configured, a destination the guard refuses, an unknown action
 * type): the delivery fails at once.
 */
export class PermanentSendError extends Error {
  override name = "PermanentSendError";
}

/** Sends notifications; `close` ends the SMTP connection pool. */
export type Senders = {
  send(out: Outgoing, ctx: AlertContext): Promise<void>;
  close(): void;
};

const RETRYABLE_4XX = new Set([408, 425, 429]);

/**
 * The senders of every action type: `webhooks` posts the legacy webhooks
 * plugin JSON, signed; `slack`, `discord`, `msteams` post their incoming
 * webhook messages; `email` sends through nodemailer to `smtpUrl`. Every
 * request carries `Idempotency-Key` (email: also as the Message-ID), and
 * times out after `timeoutMs`. Unless `allowPrivateDestinations`, an HTTP
 * request connects only to public addresses, checked on the DNS answer the
 * socket uses (outbound-guard.ts); redirects are not followed.
 */
export function createSenders(options: {
  smtpUrl: string | null;
  emailFrom: string;
  timeoutMs: number;
  userAgent: string;
  allowPrivateDestinations: boolean;
}): Senders {
  let mailer: Transporter | null = null;
  const post = async (url: string, body: string, headers: Record<string, string>) => {
    let status: number;
    try {
      status = await postOnce(new URL(url), body, {
        headers: {
          "Content-Type": "application/json",
          "User-Agent": options.userAgent,
          ...headers,
        },
        timeoutMs: options.timeoutMs,
        guarded: !options.allowPrivateDestinations,
      });
    } catch (error) {
      if (error instanceof RefusedDestinationError) throw new PermanentSendError(error.message);
      throw error;
    }
    if (status >= 200 && status < 300) return;
    const error = `${new URL(url).host} answered HTTP ${status}`;
    if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) {
      throw new PermanentSendError(error);
    }
    throw new Error(error);
  };
  return {
    async send(out, ctx) {
      const key = { [IDEMPOTENCY_HEADER]: out.idempotencyKey };
      switch (out.actionType) {
        case "webhooks": {
          const text = JSON.stringify(legacyWebhookBody(ctx));
          const headers: Record<string, string> = { ...key };
          if (out.secret) {
            headers[SIGNATURE_HEADER] = createHmac("sha256", out.secret).update(text).digest("hex");
          }
          return post(out.target, text, headers);
        }
        case "slack":
          return post(out.target, JSON.stringify(slackBody(ctx)), key);
        case "discord":
          return post(out.target, JSON.stringify(discordBody(ctx)), key);
        case "msteams":
          return post(out.target, JSON.stringify(teamsBody(ctx)), key);
        case "email": {
          if (!options.smtpUrl) throw new PermanentSendError("SLUICE_SMTP_URL is not set");
          if (!mailer) {
            const url = new URL(options.smtpUrl);
            // The URL's query may set nodemailer options; the timeouts are Sluice's.
            for (const name of ["connectionTimeout", "greetingTimeout", "socketTimeout"]) {
              if (!url.searchParams.has(name))
                url.searchParams.set(name, String(options.timeoutMs));
            }
            mailer = createTransport(url.toString());
          }
          const message = emailMessage(ctx);
          await mailer.sendMail({
            from: options.emailFrom,
            to: out.target.split(","),
            subject: message.subject,
            text: message.text,
            html: message.html,
            messageId: `<${out.idempotencyKey}@sluice>`,
            headers: key,
          });
          return;
        }
        default:
          throw new PermanentSendError(`unknown action type ${out.actionType}`);
      }
    },
    close() {
      mailer?.close();
    },
  };
}

/**
 * One POST with node:http(s), resolving to the answer's status (the body is
 * discarded). `guarded`: the literal address or every address the name
 * resolves to must be public, else `RefusedDestinationError` before any
 * byte is sent. The whole exchange times out after `timeoutMs`.
 */
function postOnce(
  url: URL,
  body: string,
  options: { headers: Record<string, string>; timeoutMs: number; guarded: boolean },
): Promise<number> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new RefusedDestinationError(`${url.protocol} is not http(s)`));
  }
  if (options.guarded) {
    try {
      assertPublicLiteral(url);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: "POST",
      headers: { ...options.headers, "Content-Length": String(Buffer.byteLength(body)) },
      signal: AbortSignal.timeout(options.timeoutMs),
      // A fresh connection per request: a kept-alive socket would skip the lookup.
      agent: false,
      ...(options.guarded ? { lookup: guardedLookup } : {}),
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(body);
  });
}

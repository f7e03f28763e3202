import nodemailer, { type Transporter } from "nodemailer";
import type { Services } from "../services.ts";

/** How long to wait for the SMTP server to accept a connection and greet (ms). */
const SMTP_CONNECT_TIMEOUT_MS = 10_000;
/** How long an SMTP connection may sit idle while sending (ms). */
const SMTP_SOCKET_TIMEOUT_MS = 30_000;

let transport: { url: string; transporter: Transporter } | null = null;

/**
 * Sends a plain-text mail through `SLUICE_SMTP_URL` (nodemailer). Returns
 * false when no SMTP server is configured, or when it refuses or cannot be
 * reached (logged as a warning): callers then hand the link to whoever
 * asked (API answer, CLI output) rather than fail after the member or
 * user was made, leaving a link nobody has.
 */
export async function sendMail(
  services: Services,
  mail: { to: string; subject: string; text: string },
): Promise<boolean> {
  const { smtpUrl, mailFrom } = services.config.accounts;
  if (!smtpUrl) return false;
  if (transport?.url !== smtpUrl) {
    transport = {
      url: smtpUrl,
      // An API request waits for the mail: bounded well below nodemailer's
      // 2-minute connection default. Query parameters of the URL
      // (`?connectionTimeout=…`) still win.
      transporter: nodemailer.createTransport({
        url: smtpUrl,
        connectionTimeout: SMTP_CONNECT_TIMEOUT_MS,
        greetingTimeout: SMTP_CONNECT_TIMEOUT_MS,
        socketTimeout: SMTP_SOCKET_TIMEOUT_MS,
      }),
    };
  }
  try {
    await transport.transporter.sendMail({ from: mailFrom, ...mail });
    return true;
  } catch (error) {
    services.log.warn(
      { err: error, subject: mail.subject },
      "mail not sent: the SMTP server failed",
    );
    return false;
  }
}

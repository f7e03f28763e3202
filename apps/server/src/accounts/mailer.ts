import nodemailer, { type Transporter } from "nodemailer";
import type { Services } from "../services.ts";

let transport: { url: string; transporter: Transporter } | null = null;

/**
 * Sends a plain-text mail through `SLUICE_SMTP_URL` (nodemailer). Returns
 * false, without sending, when no SMTP server is configured: callers then
 * hand the link to whoever asked (API answer, CLI output). Throws when the
 * SMTP server refuses or cannot be reached.
 */
export async function sendMail(
  services: Services,
  mail: { to: string; subject: string; text: string },
): Promise<boolean> {
  const { smtpUrl, mailFrom } = services.config.accounts;
  if (!smtpUrl) return false;
  if (transport?.url !== smtpUrl) {
    transport = { url: smtpUrl, transporter: nodemailer.createTransport(smtpUrl) };
  }
  await transport.transporter.sendMail({ from: mailFrom, ...mail });
  return true;
}

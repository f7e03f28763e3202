import { pino } from "pino";

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stderr (stdout stays free for what a command
 * prints, such as a DSN or `--json` output).
 */
export function createLogger(level: string, role: string): Logger {
  return pino({ level, base: { service: "sluice", role } }, pino.destination(2));
}

/**
 * Replaces the variable parts of a message with placeholders so that
 * "order 1231 failed" and "order 1232 failed" group together: a subset of
 * Sentry's `normalize_message_for_grouping` (src/sentry/grouping/
 * parameterization.py), applied in its priority
 * order: email, url, ip, uuid, sha1, md5, date, duration, hex, float, int,
 * and quoted strings or bools after `=`. Keeps the first two non-empty lines,
 * adding `...` when more were cut.
 */
export function parameterizeMessage(message: string): string {
  const lines = message.split("\n").filter((line) => line.trim() !== "");
  let text = lines.slice(0, 2).join("\n");
  if (lines.length > 2) text += "...";
  return text.replace(PATTERN, (match, ...groups) => {
    const named = groups.at(-1) as Record<string, string | undefined>;
    for (const [name, value] of Object.entries(named)) {
      if (value === undefined) continue;
      return `<${name}>`;
    }
    return match;
  });
}

const PARTS: [string, string][] = [
  ["email", String.raw`[a-zA-Z0-9.!#$%&'*+/=?^_\x60{|}~-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+`],
  ["url", String.raw`\b(?:https?|ftp|wss?):\/\/[^\s/$.?#].[^\s'"]*`],
  ["ip", String.raw`\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b`],
  [
    "uuid",
    String.raw`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`,
  ],
  ["sha1", String.raw`\b[0-9a-fA-F]{40}\b`],
  ["md5", String.raw`\b[0-9a-fA-F]{32}\b`],
  [
    "date",
    String.raw`\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b|\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b`,
  ],
  ["duration", String.raw`\b\d+(?:\.\d+)?(?:ns|ms|s|m|h)\b`],
  ["hex", String.raw`\b0[xX][0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,128}\b`],
  ["float", String.raw`-?\b\d+\.\d+\b`],
  ["int", String.raw`-?\b\d{1,7}\b`],
  ["quoted_str", `(?<==)(?:"[^"]*"|'[^']*')`],
  ["bool", String.raw`(?<==)(?:true|false)\b`],
];

const PATTERN = new RegExp(PARTS.map(([name, source]) => `(?<${name}>${source})`).join("|"), "g");

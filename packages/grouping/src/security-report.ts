const LOCAL = "'self'";

/**
 * The grouping values of a security report, when the event is one (Sentry's
 * src/sentry/grouping/strategies/security.py and src/sentry/interfaces/
 * security.py): a CSP report groups by its effective directive and the
 * blocked host (`http(s)` URIs reduced to the host, an empty or `self` URI
 * to `'self'`), or by `'unsafe-inline'`/`'unsafe-eval'` for a local script
 * violation; Expect-CT, Expect-Staple and HPKP reports by their name and
 * hostname. Null for other events.
 */
export function securityReportValues(raw: Record<string, unknown>): string[] | null {
  const csp = objectOf(raw.csp);
  if (csp) {
    const violated = stringOf(csp.violated_directive);
    const directive = stringOf(csp.effective_directive) ?? violated?.split(" ")[0] ?? "";
    const uri = normalizeUri(stringOf(csp.blocked_uri) ?? "");
    const local = localScriptViolation(directive, violated, uri);
    return local ? [directive, `'${local}'`] : [directive, uri];
  }
  for (const [key, salt] of [
    ["hpkp", "hpkp"],
    ["expectstaple", "expect-staple"],
    ["expectct", "expect-ct"],
  ] as const) {
    const report = objectOf(raw[key]);
    if (report) return [salt, stringOf(report.hostname) ?? ""];
  }
  return null;
}

function localScriptViolation(
  directive: string,
  violated: string | undefined,
  uri: string,
): string | null {
  if (!violated || directive !== "script-src" || uri !== LOCAL) return null;
  if (violated.includes("'unsafe-inline'")) return "unsafe-inline";
  if (violated.includes("'unsafe-eval'")) return "unsafe-eval";
  return null;
}

/** Sentry's `Csp._normalize_uri`: host for http(s), `scheme:` or `scheme://host` otherwise. */
function normalizeUri(value: string): string {
  if (value === "" || value === LOCAL || value === "self") return LOCAL;
  if (!value.includes(":")) return `${value}:`;
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):(?:\/\/([^/?#]*))?/.exec(value);
  if (!match) return value;
  const scheme = (match[1] as string).toLowerCase();
  const host = match[2] ?? "";
  if (scheme === "http" || scheme === "https") return host;
  return host ? `${scheme}://${host}` : `${scheme}:`;
}

function objectOf(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

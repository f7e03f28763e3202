/**
 * Formats a DSN: `{scheme}://{public_key}@{host}[:{port}][/{path}]/{project_id}`
 * (develop.sentry.dev sdk/foundations/transport/authentication). `baseUrl` is the
 * public URL of Sluice (`SLUICE_URL`), possibly with a path prefix.
 */
export function formatDsn(baseUrl: string, publicKey: string, projectId: number | string): string {
  const url = new URL(baseUrl);
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.protocol}//${publicKey}@${url.host}${path}/${projectId}`;
}

export type ParsedDsn = { publicKey: string; projectId: string; host: string };

/**
 * Parses a DSN string; null when it is not one (not a URL, no key, no
 * project, or a key with broken percent-encoding). Never throws: the DSN
 * comes from the envelope header, which is client input.
 */
export function parseDsn(dsn: string): ParsedDsn | null {
  let url: URL;
  let publicKey: string;
  try {
    url = new URL(dsn);
    publicKey = decodeURIComponent(url.username);
  } catch {
    return null;
  }
  const projectId = url.pathname.split("/").filter(Boolean).pop();
  if (!publicKey || !projectId) return null;
  return { publicKey, projectId, host: url.host };
}

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

/** Parses a DSN string; null when it is not one. */
export function parseDsn(dsn: string): ParsedDsn | null {
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    return null;
  }
  const projectId = url.pathname.split("/").filter(Boolean).pop();
  if (!url.username || !projectId) return null;
  return { publicKey: decodeURIComponent(url.username), projectId, host: url.host };
}

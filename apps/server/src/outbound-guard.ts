import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * The guard on outgoing alert requests (webhooks, Slack, Discord, Teams):
 * they go only to public unicast addresses over http(s), so a rule cannot
 * make Sluice reach its own network (loopback, RFC 1918, fc00::/7,
 * link-local with the cloud metadata address 169.254.169.254, fe80::/10,
 * unspecified, multicast, CGNAT, and every other range ipaddr.js does not
 * class as `unicast`). As Sentry's `sentry.net.socket` does
 * (`is_safe_hostname`, `safe_create_connection`): a name is checked by
 * every address it resolves to, one bad address refuses it, a name that
 * does not resolve is refused when saved, and the check is repeated on
 * the addresses the connection actually uses, so DNS rebinding between the
 * check and the connect does not pass.
 */

/** A destination the guard refuses; sending to it is a permanent failure. */
export class RefusedDestinationError extends Error {
  override name = "RefusedDestinationError";
  readonly code = "EREFUSEDDESTINATION";
}

/** The range of an address when it is not public (`loopback`, `private`, …); null when it is. */
export function nonPublicRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return "invalid";
  // process() turns an IPv4-mapped IPv6 address (::ffff:127.0.0.1) into its IPv4 address.
  const range = ipaddr.process(address).range();
  return range === "unicast" ? null : range;
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/**
 * Why `url` may not be an alert destination, in words for a 400, or null.
 * `allowPrivate` (SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS) lets every
 * http(s) URL pass without a lookup. `lookup` resolves a name to all its
 * addresses (dns.lookup by default).
 */
export async function destinationProblem(
  url: string,
  allowPrivate: boolean,
  lookup: (host: string) => Promise<string[]> = lookupAll,
): Promise<string | null> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "Not a valid URL.";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    return "Only http:// and https:// URLs may receive alerts.";
  if (allowPrivate) return null;
  const host = hostOf(parsed);
  if (isIP(host)) {
    const range = nonPublicRange(host);
    return range ? refusedText(host, host, range) : null;
  }
  let addresses: string[];
  try {
    addresses = await lookup(host);
  } catch {
    return `${host} does not resolve; alerts go only to public addresses.`;
  }
  if (addresses.length === 0)
    return `${host} does not resolve; alerts go only to public addresses.`;
  for (const address of addresses) {
    const range = nonPublicRange(address);
    if (range) return refusedText(host, address, range);
  }
  return null;
}

function refusedText(host: string, address: string, range: string): string {
  const where = host === address ? address : `${host} (${address})`;
  return `${where} is a ${range} address; alerts go only to public addresses (set SLUICE_ALERT_ALLOW_PRIVATE_DESTINATIONS=true to allow a private network).`;
}

/** How long a save waits for DNS before it calls the name unresolvable (ms). */
const SAVE_LOOKUP_TIMEOUT_MS = 5_000;

function lookupAll(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("DNS timeout")), SAVE_LOOKUP_TIMEOUT_MS);
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(addresses.map((a) => a.address));
    });
  });
}

/**
 * A `lookup` for `http.request` / `net.connect` that resolves the name and
 * fails with `RefusedDestinationError` when any address it got is not
 * public: the check is on the very answer the socket connects to. It
 * answers in the form asked (`all` or one address), as net's
 * happy-eyeballs connect asks for all.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  const all: LookupAllOptions = { ...options, all: true };
  dnsLookup(hostname, all, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, "");
    for (const a of addresses) {
      const range = nonPublicRange(a.address);
      if (range)
        return callback(new RefusedDestinationError(refusedText(hostname, a.address, range)), "");
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first) {
      return callback(
        Object.assign(new Error(`${hostname} did not resolve`), { code: "ENOTFOUND" }),
        "",
      );
    }
    callback(null, first.address, first.family);
  });
};

/**
 * The check before connecting to a URL whose host is an address (no lookup
 * is made for it): throws `RefusedDestinationError` for a non-public one.
 */
export function assertPublicLiteral(url: URL): void {
  const host = hostOf(url);
  if (!isIP(host)) return;
  const range = nonPublicRange(host);
  if (range) throw new RefusedDestinationError(refusedText(host, host, range));
}

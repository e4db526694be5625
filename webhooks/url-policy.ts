import { lookup as dnsLookup } from 'node:dns';
import { lookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import type { LookupFunction } from 'node:net';

/*
 * Which webhook URLs the gateway will call. A URL is refused when its host is, or
 * resolves to, an address that is not on the public internet: otherwise a merchant could
 * point deliveries at the gateway's own network (the database, Temporal, a cloud metadata
 * service). Outside production loopback is exempt, so a developer and the tests can
 * receive on 127.0.0.1. The check runs at registration and again on every delivery,
 * where the connection is made to the very address that passed (guardedLookup), so a
 * name that re-resolves between check and connect cannot slip through.
 */

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved and broadcast
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  // Unspecified and IPv4-compatible. IPv4-mapped addresses (::ffff:a.b.c.d) need no rule:
  // BlockList checks them against the IPv4 rules above (a ::ffff:0:0/96 rule would match
  // every IPv4 address).
  ['::', 96],
  ['64:ff9b::', 96], // NAT64
  ['100::', 64], // discard
  ['2001::', 32], // Teredo
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

export type AddressKind = 'public' | 'loopback' | 'not_public';

export function addressKind(address: string): AddressKind {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  if (LOOPBACK.check(address, family)) return 'loopback';
  return NOT_PUBLIC.check(address, family) ? 'not_public' : 'public';
}

/** The policy's one switch: production refuses loopback too. */
export interface UrlPolicy {
  production: boolean;
}

export const addressAllowed = (address: string, policy: UrlPolicy): boolean => {
  const kind = addressKind(address);
  return kind === 'public' || (kind === 'loopback' && !policy.production);
};

/** Why a URL is refused; `code` is the api's stable error code. */
export class WebhookUrlError extends Error {
  constructor(
    readonly code: 'invalid_webhook_url' | 'webhook_url_not_public' | 'webhook_url_unresolvable',
    message: string,
  ) {
    super(message);
  }
}

/** The host as an address or a name: URL keeps IPv6 literals in brackets. */
const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** A well-formed http(s) URL without credentials in it, or a WebhookUrlError. */
export function parseWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError('invalid_webhook_url', 'the url is not a valid absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new WebhookUrlError('invalid_webhook_url', 'the url must use http or https');
  }
  // Credentials in a URL end up in logs and in the delivery log shown to the merchant.
  if (url.username || url.password) {
    throw new WebhookUrlError('invalid_webhook_url', 'the url must not carry a user or password');
  }
  if (!url.hostname) throw new WebhookUrlError('invalid_webhook_url', 'the url has no host');
  return url;
}

function refuse(address: string): WebhookUrlError {
  return new WebhookUrlError(
    'webhook_url_not_public',
    `the url's host is or resolves to ${address}, which is not a public internet address`,
  );
}

/** Throws a WebhookUrlError unless every address the URL's host has is allowed. */
export async function checkWebhookHost(url: URL, policy: UrlPolicy): Promise<void> {
  const host = hostOf(url);
  if (isIP(host)) {
    if (!addressAllowed(host, policy)) throw refuse(host);
    return;
  }
  let addresses: LookupAddress[];
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch {
    throw new WebhookUrlError(
      'webhook_url_unresolvable',
      `the url's host ${host} does not resolve`,
    );
  }
  const bad = addresses.find((a) => !addressAllowed(a.address, policy));
  if (bad) throw refuse(bad.address);
}

/** A host that is an address literal and not allowed; names go through guardedLookup. */
export function refusedLiteral(url: URL, policy: UrlPolicy): WebhookUrlError | undefined {
  const host = hostOf(url);
  return isIP(host) && !addressAllowed(host, policy) ? refuse(host) : undefined;
}

/**
 * A `lookup` for http.request that fails the connection when any address of the name is
 * not allowed, and otherwise hands the socket exactly the addresses it checked.
 */
export function guardedLookup(policy: UrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses;
      const bad = list.find((a) => !addressAllowed(a.address, policy));
      if (bad) return callback(refuse(bad.address), '', 0);
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(new Error(`${hostname} has no address`), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

// client-address: who a client is, for the per-client limits. An IPv6 client is its network (a /64 by
// default: one host, or one customer, gets a whole /64 and can pick any address in it), an IPv4
// client its address. Pure; input: a socket's address, a PROXY header's or a policy request's.
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The key a client's connections and unknown recipients are counted under: the IPv4 address (an
 * IPv4-mapped IPv6 address is its IPv4 address), `NETWORK/PREFIX` for IPv6, and anything that is not
 * an IP address (a policy request's `unknown`, or none) as given, so that such clients share a count.
 */
export function clientKey(address: string, ipv6PrefixLength: number): string {
  // The common case, and already the one spelling there is (node's isIPv4 takes no leading zeros).
  if (isIPv4(address)) return address;
  const ip = parseIp(address);
  if (!ip) return address;
  if (ip.kind() === 'ipv4' || ipv6PrefixLength >= 128) return ip.toString();
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${ip.toString()}/${ipv6PrefixLength}`).toString()}/${ipv6PrefixLength}`;
}

/** One spelling for one address (case, zero compression, the IPv4-mapped prefix), to compare listed relays with a client; anything else as given. */
export function canonicalAddress(address: string): string {
  if (isIPv4(address)) return address;
  const ip = parseIp(address);
  return ip ? ip.toString() : address;
}

function parseIp(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = withoutZone(address);
  // ipaddr.js also reads the old inet_aton forms (`10.1`, octal); a client address is never one of them.
  if (isIPv4(bare)) return ipaddr.IPv4.parse(bare);
  if (!isIPv6(bare)) return null;
  const ip = ipaddr.IPv6.parse(bare);
  return ip.isIPv4MappedAddress() ? ip.toIPv4Address() : ip;
}

/** A link-local address's zone (`fe80::1%eth0`) names an interface here, not the client. */
function withoutZone(address: string): string {
  const at = address.indexOf('%');
  return at === -1 ? address : address.slice(0, at);
}

// handshake-limit: the implicit-TLS listener's per-client limit for sockets still in their TLS
// handshake, which smtp-server holds until its idle timeout before any session (and onConnect's
// per-client limit) exists: without it one address could fill the listener with handshakes never made.
import type { Server, Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import { canonicalAddress } from './client-address.js';
import type { ClientLimits } from './client-limits.js';

/**
 * Refuses (closes at once: nothing can be said before TLS) a socket whose client already has
 * maxPerClient sockets not yet past their handshake. A socket is past it once smtp-server no longer
 * holds it as pending; sockets from proxies (a PROXY header names their clients later) and from
 * exempt relays are not counted. onRefused hears of each refusal.
 */
export function limitHandshakesPerClient(
  server: SMTPServer,
  limits: ClientLimits,
  options: { maxPerClient: number; proxies: readonly string[] },
  onRefused: (address: string) => void,
): void {
  const listener = (server as unknown as { server: Server }).server;
  // smtp-server's sockets between accept and session (not a public property; checked as it starts).
  const pending = (server as unknown as { _pendingSockets?: Map<Socket, unknown> })._pendingSockets;
  const [accept, ...others] = listener.listeners('connection') as ((socket: Socket) => void)[];
  if (!(pending instanceof Map) || !accept || others.length > 0) throw new Error('smtp-server no longer accepts sockets as handshake-limit.ts expects: it must be updated');
  const proxies = new Set(options.proxies.map(canonicalAddress));
  const handshaking = new Map<string, Set<Socket>>();
  listener.removeAllListeners('connection');
  listener.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ? canonicalAddress(socket.remoteAddress) : null;
    if (!address || proxies.has(address) || limits.isExempt(address)) return accept.call(listener, socket);
    const client = limits.clientOf(address);
    const mine = handshaking.get(client) ?? new Set<Socket>();
    for (const held of mine) if (!pending.has(held)) mine.delete(held);
    if (mine.size >= options.maxPerClient) {
      socket.on('error', () => undefined);
      socket.destroy();
      onRefused(address);
      return;
    }
    mine.add(socket);
    handshaking.set(client, mine);
    socket.once('close', () => {
      mine.delete(socket);
      if (mine.size === 0 && handshaking.get(client) === mine) handshaking.delete(client);
    });
    accept.call(listener, socket);
  });
}

// listen: binds a TCP or HTTP server to a HOST:PORT setting (port 0 picks a free one) and says where
// it is bound; a bind that fails (EADDRINUSE, EACCES) rejects with its reason. Side effects: a listener.
import type { AddressInfo, Server } from 'node:net';
import { parseHostPort } from './config.js';

export async function listenOn(server: Server, listen: string): Promise<{ host: string; port: number }> {
  const address = parseHostPort(listen);
  if (!address) throw new Error(`not HOST:PORT: ${listen}`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return { host: bound.address, port: bound.port };
}

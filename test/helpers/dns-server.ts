// A DNS server on 127.0.0.1 for tests of SPF, DKIM and DMARC: real DNS over UDP (dns-packet encodes
// and decodes the wire format), answering from a table of TXT and A records the test sets.
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket, { type Answer, type Question } from 'dns-packet';

export interface DnsRecords {
  /** Each TXT record's text, split into 255-octet strings on the wire. */
  TXT?: string[];
  A?: string[];
}

export interface TestDnsServer {
  /** `127.0.0.1:PORT`, for INTAKE_DNS_SERVERS. */
  address: string;
  /** Names asked for, with their type, in order. */
  queries: string[];
  set(name: string, records: DnsRecords): void;
  /** While true, no query is answered (a resolver that times out). */
  silent: boolean;
  /** Names answered SERVFAIL (a zone whose servers are broken: a temporary error). */
  failing: Set<string>;
  /** Names never answered (a zone whose servers do not answer, or answer slowly on purpose). */
  unanswered: Set<string>;
  close(): Promise<void>;
}

const SERVFAIL = 2;
const NXDOMAIN = 3;

export async function startDnsServer(zone: Record<string, DnsRecords> = {}): Promise<TestDnsServer> {
  const records = new Map(Object.entries(zone).map(([name, set]) => [name.toLowerCase(), set]));
  const socket: Socket = createSocket('udp4');
  const server: TestDnsServer = {
    address: '',
    queries: [],
    silent: false,
    failing: new Set(),
    unanswered: new Set(),
    set: (name, set) => void records.set(name.toLowerCase(), set),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (message, peer) => {
    const query = dnsPacket.decode(message);
    const question = query.questions?.[0];
    if (!question) return;
    server.queries.push(`${question.name} ${question.type}`);
    const name = question.name.toLowerCase();
    if (server.silent || server.unanswered.has(name)) return;
    const known = server.failing.has(name) ? undefined : records.get(name);
    const rcode = server.failing.has(name) ? SERVFAIL : known ? 0 : NXDOMAIN;
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
      questions: [question],
      answers: known ? answersFor(question, known) : [],
    });
    socket.send(response, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  server.address = `127.0.0.1:${socket.address().port}`;
  return server;
}

function answersFor(question: Question, set: DnsRecords): Answer[] {
  const base = { name: question.name, ttl: 60, class: 'IN' as const };
  if (question.type === 'TXT') return (set.TXT ?? []).map((text) => ({ ...base, type: 'TXT' as const, data: text.match(/[^]{1,255}/g) ?? [''] }));
  if (question.type === 'A') return (set.A ?? []).map((ip) => ({ ...base, type: 'A' as const, data: ip }));
  return [];
}

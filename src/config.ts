// config: the one schema of every setting, read from INTAKE_* environment variables and an optional
// YAML or JSON file (environment wins). Input: operator-supplied. Side effects: reads the config file.
// The only module that reads process.env.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { hostname as machineHostname } from 'node:os';
import { z } from 'zod';
import { compileTemplate, KEY_PLACEHOLDER, TemplateError } from './address/template.js';
import { folderPath, sameFolder } from './fetch/graph-folder.js';

// yaml is loaded when a YAML file is read: most starts have none, and every command would pay for it.
const require = createRequire(import.meta.url);

/** A listener address, or '' for no listener. */
const optionalHostPort = z.string().refine((v) => v === '' || parseHostPort(v) !== null, {
  message: 'expected HOST:PORT, e.g. 127.0.0.1:24, or empty for no listener',
});

/** IP addresses, as a list (YAML/JSON) or separated by commas or spaces (environment). */
const ipList = z
  .union([z.array(z.string()), z.string().transform((v) => v.split(/[\s,]+/).filter((a) => a !== ''))])
  .superRefine((list, ctx) => {
    for (const entry of list) {
      if (isIP(entry) === 0) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} is not an IP address (networks are not supported: list each relay)` });
    }
  });

/** An HTTPS origin, as Microsoft's endpoints are given (a token must not cross in clear). */
const httpsOrigin = z.string().refine(
  (v) => {
    try {
      const url = new URL(v);
      return url.protocol === 'https:' && url.origin === v.replace(/\/+$/, '') && !url.username;
    } catch {
      return false;
    }
  },
  { message: 'expected an https:// origin, no path, like https://graph.microsoft.com' },
);

const addressTemplate = z.string().superRefine((value, ctx) => {
  try {
    compileTemplate(value);
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
  }
});

/** The Service Desk alias template: empty, or a template with a key (its bare mailbox names nothing). */
const serviceDeskTemplate = z.string().superRefine((value, ctx) => {
  if (value === '') return;
  try {
    if (!compileTemplate(value).hasKey) ctx.addIssue({ code: 'custom', message: `needs ${KEY_PLACEHOLDER} in its local part: the key names the project` });
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
  }
});

const booleanFlag = z.union(
  [z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')],
  { error: 'expected true or false (or 1/0, yes/no)' },
);

/**
 * A whole number, `notANumber` said of anything else. zod gives a schema's own message to every issue
 * of it, so a number out of range would be told it is not a number: the range says what it is instead.
 */
function wholeNumber(notANumber: string) {
  return z.coerce.number({
    error: (raised) => {
      // Typed as the number's own issues only; the checks chained after it (min, max) raise theirs here too.
      const issue = raised as { code: string; maximum?: unknown; minimum?: unknown };
      if (issue.code === 'too_big') return `at most ${String(issue.maximum)}`;
      if (issue.code === 'too_small') return `at least ${String(issue.minimum)}`;
      return notANumber;
    },
  });
}

/**
 * Every setting: its key in a config file, its environment variable, its default and what it means.
 * README's configuration table is checked against this list by test/meta/readme.test.ts.
 */
export const SETTINGS = {
  database: {
    env: 'INTAKE_DATABASE',
    schema: z.string().min(1),
    default: './data/intake.sqlite',
    doc: 'SQLite database file; created with its folder when missing.',
  },
  address: {
    env: 'INTAKE_ADDRESS',
    schema: addressTemplate,
    default: 'incoming+%{key}@localhost',
    doc: 'Address template. `%{key}` marks where the key goes and must be in the local part; without it only the mailbox address itself is accepted. An internationalised domain may be written in Unicode or in its `xn--` form; addresses are written in the latter.',
  },
  service_desk_address: {
    env: 'INTAKE_SERVICE_DESK_ADDRESS',
    schema: serviceDeskTemplate,
    default: '',
    defaultDoc: 'none',
    doc: "Service Desk alias template, GitLab's `service_desk_email` address (e.g. `contact+%{key}@example.com`; another domain may be given): mail to it only ever opens or continues a Service Desk issue. Its key is `<project path slug>-<service_desk_key>` (a project's alias key), or the Service Desk key of the address template (`<slug>-<id>-issue-`, legacy `group/project`); a key that names no project with its Service Desk on is refused at RCPT. An address the address template takes is read by it first. Empty: no alias.",
  },
  smtp_listen: {
    env: 'INTAKE_SMTP_LISTEN',
    schema: optionalHostPort,
    default: '127.0.0.1:2525',
    doc: 'HOST:PORT of the SMTP listener (port 0 picks a free port, printed in the `listening` log line); empty for none, e.g. behind Postfix with LMTP only.',
  },
  lmtp_listen: {
    env: 'INTAKE_LMTP_LISTEN',
    schema: optionalHostPort,
    default: '',
    defaultDoc: 'none',
    doc: 'HOST:PORT of the LMTP listener, for an MTA in front (Postfix `lmtp:inet:HOST:PORT`): one reply per recipient after DATA. Empty for none.',
  },
  smtps_listen: {
    env: 'INTAKE_SMTPS_LISTEN',
    schema: optionalHostPort,
    default: '',
    defaultDoc: 'none',
    doc: 'HOST:PORT of an implicit-TLS SMTP listener (TLS from the first byte, as on port 465). Needs the TLS files. Empty for none.',
  },
  policy_listen: {
    env: 'INTAKE_POLICY_LISTEN',
    schema: optionalHostPort,
    default: '',
    defaultDoc: 'none',
    doc: 'HOST:PORT of the Postfix policy service (`check_policy_service inet:HOST:PORT`), which refuses unknown keys at Postfix\'s RCPT. It answers whoever connects: keep it on loopback. Empty for none.',
  },
  http_listen: {
    env: 'INTAKE_HTTP_LISTEN',
    schema: optionalHostPort,
    default: '',
    defaultDoc: 'none',
    doc: 'HOST:PORT of the monitoring listener: `GET /health` (200, or 503 naming what is wrong) and `GET /metrics` (Prometheus). It answers whoever connects and tells counts, never content: keep it on loopback or behind your proxy. Empty for none.',
  },
  tls_cert_file: {
    env: 'INTAKE_TLS_CERT_FILE',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: 'PEM certificate chain for STARTTLS and the implicit-TLS listener; read again on SIGHUP. Empty: no STARTTLS.',
  },
  tls_key_file: {
    env: 'INTAKE_TLS_KEY_FILE',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: 'PEM private key of `tls_cert_file`; read again on SIGHUP.',
  },
  require_tls: {
    env: 'INTAKE_REQUIRE_TLS',
    schema: booleanFlag,
    default: false,
    doc: 'Refuse MAIL FROM on the SMTP listener until the client has done STARTTLS (`530 5.7.0`). Needs the TLS files.',
  },
  trusted_relays: {
    env: 'INTAKE_TRUSTED_RELAYS',
    schema: ipList,
    default: '',
    defaultDoc: 'none',
    doc: 'IP addresses of relays allowed to send XCLIENT and XFORWARD, so the original client address and HELO are recorded (Postfix: `lmtp_send_xforward_command = yes`). Comma-separated.',
  },
  proxy_protocol_from: {
    env: 'INTAKE_PROXY_PROTOCOL_FROM',
    schema: ipList,
    default: '',
    defaultDoc: 'none',
    doc: 'IP addresses of proxies (HAProxy, a load balancer) whose connections start with a PROXY protocol v1 header; a connection from them is closed at its first line when that is not one (smtp-server answers `* BAD Invalid PROXY header`), and one that sends nothing gets no greeting before it (the header comes first) and waits for `INTAKE_SOCKET_TIMEOUT_MS`. Comma-separated.',
  },
  hostname: {
    env: 'INTAKE_HOSTNAME',
    // Empty (deploy/intake.env's line uncommented as shown) is the machine's name, from anywhere.
    schema: z.preprocess((value) => (value === '' ? machineHostname() : value), z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a host name such as mx.example.com')),
    default: machineHostname(),
    defaultDoc: "the machine's hostname",
    doc: 'Name in the SMTP banner, and HOST in the `reply-KEY@HOST` message ids of notifications: replies to the mailbox address are found by that HOST, so set it explicitly (a new machine or container name would orphan the notifications already sent).',
  },
  max_message_bytes: {
    env: 'INTAKE_MAX_MESSAGE_BYTES',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1024).max(1024 * 1024 * 1024),
    default: 26214400,
    doc: 'Largest message accepted, in bytes; advertised with the SIZE extension.',
  },
  min_free_bytes: {
    env: 'INTAKE_MIN_FREE_BYTES',
    schema: z.preprocess((value) => (value === '' ? null : value), wholeNumber('expected a whole number (digits only, no unit), or empty for 1.5 times max_message_bytes').int().min(0).nullable()),
    default: '',
    defaultDoc: '1.5 × `max_message_bytes`',
    doc: "Free space the database's file system must keep: while it has less than this (plus the SIZE a client declares), MAIL FROM gets `452 4.3.1` (Postfix's smtpd keeps 1.5 × its size limit free the same way), instead of a message sent in full and then refused for want of room. 0 keeps none (a declared SIZE must still fit).",
  },
  max_attachment_bytes: {
    env: 'INTAKE_MAX_ATTACHMENT_BYTES',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(0),
    default: 10485760,
    doc: 'Largest attachment stored; a larger one is left out and a line in the body says so.',
  },
  keep_raw_days: {
    env: 'INTAKE_KEEP_RAW_DAYS',
    schema: wholeNumber('expected a whole number of days (digits only), or 0 to keep raw messages for ever').int().min(0).max(36500),
    default: 0,
    doc: "Days a message's raw bytes are kept. `intake serve` drops older ones at start and every hour, as `intake prune` does; the row and its recipients stay (`raw_pruned_at` says when), and a copy sent again is still recognised. `intake show --raw` and `intake reprocess` need them: reprocess a `failed` message within this time. 0 keeps them for ever.",
  },
  max_recipients: {
    env: 'INTAKE_MAX_RECIPIENTS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1).max(10000),
    default: 100,
    doc: 'Accepted recipients per message, a repeated one counted again (as by Postfix `smtpd_recipient_limit`); the next one gets `452 4.5.3`. RFC 5321 (4.5.3.1.8) asks a server to take at least 100.',
  },
  max_refused_recipients: {
    env: 'INTAKE_MAX_REFUSED_RECIPIENTS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1).max(100000),
    default: 100,
    doc: 'Refused recipients per SMTP session, for any reason but too many recipients; the next one gets `421 4.7.0` and the session is closed (as Postfix\'s `smtpd_hard_error_limit`). A session may collect 1,000 `452 4.5.3` (too many recipients) answers on top, the rest of a large message to be sent again (Postfix\'s `smtpd_recipient_overshoot_limit`). Trusted relays and LMTP clients are not limited.',
  },
  max_clients: {
    env: 'INTAKE_MAX_CLIENTS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1),
    default: 100,
    doc: 'Concurrent connections per SMTP, SMTPS or LMTP listener; one more is answered `421 4.3.2` and closed.',
  },
  max_connections_per_ip: {
    env: 'INTAKE_MAX_CONNECTIONS_PER_IP',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1),
    default: 20,
    doc: 'Concurrent SMTP sessions from one client (an IPv4 address, or an IPv6 network: `client_ipv6_prefix_length`); one more is answered `421 4.7.0` and closed. On the implicit-TLS listener, as many connections again may be in their TLS handshake; one more is closed at once. Trusted relays and the LMTP listener (its clients are relays) are exempt.',
  },
  client_ipv6_prefix_length: {
    env: 'INTAKE_CLIENT_IPV6_PREFIX_LENGTH',
    schema: wholeNumber('expected a whole number of bits, 1 to 128').int().min(1).max(128),
    default: 64,
    doc: 'The per-client limits (`max_connections_per_ip`, `unknown_recipient_limit`) count an IPv6 client as its network of this many bits: whoever has one address of a /64 usually has all of them. 128 counts each address on its own. IPv4 clients are counted by address.',
  },
  unknown_recipient_limit: {
    env: 'INTAKE_UNKNOWN_RECIPIENT_LIMIT',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1),
    default: 20,
    doc: 'Unknown recipients one client (an IPv4 address, or an IPv6 network: `client_ipv6_prefix_length`) may name per window (key guessing). Past half of it, each refusal waits a second longer than the one before (up to 5 s), which is logged; at the limit the session gets `421 4.7.0` and the client is shut out. Trusted relays and the LMTP listener are exempt; behind Postfix the policy service counts by the client Postfix names.',
  },
  unknown_recipient_window_ms: {
    env: 'INTAKE_UNKNOWN_RECIPIENT_WINDOW_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1000),
    default: 600000,
    doc: 'The window `unknown_recipient_limit` counts over.',
  },
  unknown_recipient_block_ms: {
    env: 'INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(0),
    default: 600000,
    doc: 'How long a client that reached `unknown_recipient_limit` is refused at connect (`421 4.7.0`).',
  },
  sender_rate_limit: {
    env: 'INTAKE_SENDER_RATE_LIMIT',
    schema: wholeNumber('expected a whole number (digits only, no unit), or 0 for no limit').int().min(0),
    default: 20,
    doc: "Messages one sender (where answers go: its Reply-To, else From, else Sender) may have processed for one destination (an issue or merge request replied to, a project's Service Desk, new issue or new merge request address) in a row; after that one more each `sender_rate_window_ms` divided by this (a token bucket). A message over it gets `451 4.7.1`, and its sender tries again later. It slows a loop with an auto-responder or another tracker that gets past the auto-generated checks to a trickle, and a flood of Service Desk tickets from one address. Counted by `intake serve`, from its start (each `intake deliver` is a process of its own, and is not limited). 0: no limit.",
  },
  sender_rate_window_ms: {
    env: 'INTAKE_SENDER_RATE_WINDOW_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1000),
    default: 3600000,
    doc: 'The window `sender_rate_limit` counts over: with the defaults, 20 messages, then one every 3 minutes.',
  },
  socket_timeout_ms: {
    env: 'INTAKE_SOCKET_TIMEOUT_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1000),
    default: 300000,
    doc: 'An SMTP session that sends no complete command for this long (idle, or one byte at a time) is closed with `421`; the time a message takes to arrive after DATA is not counted, but a message of which nothing more comes for this long is cut off (`session.data_timeout`). Five minutes, as RFC 5321 (4.5.3.2.7) asks and Postfix `smtpd_timeout` waits.',
  },
  data_timeout_ms: {
    env: 'INTAKE_DATA_TIMEOUT_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1000),
    default: 600000,
    doc: 'A message must arrive whole within this long after DATA, or the session is closed with `421` and nothing is stored (a trickling sender would hold a connection slot for ever); 10 minutes is 42 KB/s for the largest message.',
  },
  reverse_lookup: {
    env: 'INTAKE_REVERSE_LOOKUP',
    schema: booleanFlag,
    default: false,
    doc: 'Look up the client\'s reverse DNS name for every connection (off: it costs a DNS query per session).',
  },
  authentication: {
    env: 'INTAKE_AUTHENTICATION',
    schema: z.enum(['off', 'record', 'enforce'], { error: 'expected off, record or enforce' }),
    default: 'off',
    doc: 'Sender authentication of every message received (mailauth): SPF of the client, DKIM signatures, DMARC of the From domains. `record` stores the results (`inbound_messages.spf`, `dkim`, `dmarc`, `authentication_results`); `enforce` also refuses with `550 5.7.26` mail that fails DMARC where the From domain publishes `p=reject`, and with `552 5.3.4` a header too long to check, or ignores such mail (`250`) when a relay passed it on, which would bounce it. For a listener the internet reaches directly (an MX); off behind a relay that checks already. SPF needs the client: a relay\'s own address is not judged (LMTP, or a trusted relay without XCLIENT/XFORWARD).',
  },
  dns_servers: {
    env: 'INTAKE_DNS_SERVERS',
    schema: z
      .union([z.array(z.string()), z.string().transform((v) => v.split(/[\s,]+/).filter((a) => a !== ''))])
      .superRefine((list, ctx) => {
        for (const entry of list) {
          if (isIP(entry) === 0 && !isIP(parseHostPort(entry)?.host ?? '')) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} is not an IP address or IP:PORT` });
        }
      }),
    default: '',
    defaultDoc: "the system's (/etc/resolv.conf)",
    doc: 'DNS resolvers for `authentication`, as IP or IP:PORT (`[IPv6]:PORT`), comma-separated. A caching resolver near intake (unbound, systemd-resolved) saves each message several queries.',
  },
  dns_timeout_ms: {
    env: 'INTAKE_DNS_TIMEOUT_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(100).max(60000),
    default: 5000,
    doc: "How long `authentication` may take for one message in all (a query's first try waits a quarter of it). Past it the results are `temperror` and the message is taken: a DNS outage must not hold up mail.",
  },
  imap_host: {
    env: 'INTAKE_IMAP_HOST',
    schema: z.string().refine((v) => v === '' || /^[A-Za-z0-9.-]+$|^[0-9A-Fa-f:.]+$/.test(v), { message: 'expected a host name or IP address (no scheme, no port: the port is INTAKE_IMAP_PORT)' }),
    default: '',
    defaultDoc: 'none',
    doc: "IMAP server to fetch mail from, for a mailbox intake cannot be the MX of (IMAP ingress). Each message in `imap_mailbox` is taken as sent to the address template's mailbox address and routed by its headers in GitLab's order (To, References, Delivered-To, Envelope-To...); it is deleted, moved or flagged only once it is stored, and a message is fetched once (`inbound_messages.fetched_from`). Empty: no fetcher.",
  },
  imap_port: {
    env: 'INTAKE_IMAP_PORT',
    schema: wholeNumber('expected a port number').int().min(1).max(65535),
    default: 993,
    doc: 'Port of the IMAP server (993 for `implicit` TLS, 143 for `starttls`).',
  },
  imap_tls: {
    env: 'INTAKE_IMAP_TLS',
    schema: z.enum(['implicit', 'starttls', 'none'], { error: 'expected implicit, starttls or none' }),
    default: 'implicit',
    doc: "TLS to the IMAP server: `implicit` (from the first byte, port 993), `starttls` (required: a server that does not offer it is not logged in to), or `none` (the password crosses in clear: loopback only). The certificate is checked against the system's CAs and `NODE_EXTRA_CA_CERTS`.",
  },
  imap_user: {
    env: 'INTAKE_IMAP_USER',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: 'User name to log in to the IMAP server with.',
  },
  imap_password: {
    env: 'INTAKE_IMAP_PASSWORD',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: 'Its password; or give `imap_password_file`.',
  },
  imap_password_file: {
    env: 'INTAKE_IMAP_PASSWORD_FILE',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: 'A file holding the password (its first line), read at start: for systemd credentials or a secret mounted into a container, where an environment variable would show in `/proc`.',
  },
  imap_mailbox: {
    env: 'INTAKE_IMAP_MAILBOX',
    schema: z.string().min(1),
    default: 'INBOX',
    doc: 'The folder to fetch from, as the server names it (levels separated by its delimiter).',
  },
  imap_after: {
    env: 'INTAKE_IMAP_AFTER',
    schema: z.enum(['delete', 'move', 'seen'], { error: 'expected delete, move or seen' }),
    default: 'delete',
    doc: 'What becomes of a message once its row is committed (stored, or refused for good): `delete` it (the raw message is in the database), `move` it to `imap_move_to`, or flag it `seen` and leave it. A message deferred (4xx) is left and fetched again later; one too big to store is never deleted.',
  },
  imap_move_to: {
    env: 'INTAKE_IMAP_MOVE_TO',
    schema: z.string().min(1),
    default: 'intake',
    doc: 'The folder `imap_after=move` moves messages to; created when missing.',
  },
  imap_check_interval_ms: {
    env: 'INTAKE_IMAP_CHECK_INTERVAL_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1000).max(3_600_000),
    default: 300000,
    doc: 'How often the folder is searched whatever IDLE said: new mail is fetched as soon as the server announces it (IDLE, or NOOP every 2 minutes on a server without it); this catches what an announcement missed, and retries deferred messages.',
  },
  graph_user: {
    env: 'INTAKE_GRAPH_USER',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: "Microsoft 365 mailbox to fetch mail from over Microsoft Graph (its address or object ID), for a mailbox intake cannot be the MX of and whose IMAP takes OAuth2 alone (Graph ingress). Each message in `graph_folder` is taken as sent to the address template's mailbox address and routed by its headers, as for IMAP; it is deleted, moved or marked read only once it is stored, and fetched once (`inbound_messages.fetched_from`, under Graph's immutable ID). Needs an app registration with the application permission Mail.ReadWrite (limit it to this mailbox with an Exchange application access policy). Empty: no fetcher.",
  },
  graph_tenant_id: {
    env: 'INTAKE_GRAPH_TENANT_ID',
    schema: z.string().refine((v) => v === '' || /^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(v), { message: 'expected a directory (tenant) ID or a domain like contoso.onmicrosoft.com' }),
    default: '',
    defaultDoc: 'none',
    doc: 'The Microsoft Entra directory (tenant) ID of the mailbox, or its domain.',
  },
  graph_client_id: {
    env: 'INTAKE_GRAPH_CLIENT_ID',
    schema: z.string().refine((v) => v === '' || /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v), { message: 'expected the app registration\'s application (client) ID, a GUID like 8f2b7c1e-...' }),
    default: '',
    defaultDoc: 'none',
    doc: "The app registration's application (client) ID.",
  },
  graph_client_secret: {
    env: 'INTAKE_GRAPH_CLIENT_SECRET',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: "A client secret of the app registration (its value, not its ID); or give `graph_client_secret_file`.",
  },
  graph_client_secret_file: {
    env: 'INTAKE_GRAPH_CLIENT_SECRET_FILE',
    schema: z.string(),
    default: '',
    defaultDoc: 'none',
    doc: 'A file holding the client secret (its first line), read at start: for systemd credentials or a secret mounted into a container.',
  },
  graph_folder: {
    env: 'INTAKE_GRAPH_FOLDER',
    schema: z.string().min(1),
    default: 'inbox',
    doc: 'The folder to fetch from: a well-known name (`inbox`, `archive`, ... in any language of the mailbox) or display names under the top of the mailbox, levels separated by `/` (`Inbox/Support`).',
  },
  graph_after: {
    env: 'INTAKE_GRAPH_AFTER',
    schema: z.enum(['delete', 'move', 'read'], { error: 'expected delete, move or read' }),
    default: 'delete',
    doc: 'What becomes of a message once its row is committed (stored, or refused for good): `delete` it (to Deleted Items; the raw message is in the database), `move` it to `graph_move_to`, or mark it `read` and leave it (then only unread messages are listed: one a person opened first is not fetched). A message deferred (4xx) is left and fetched again later; one too big to store is never deleted.',
  },
  graph_move_to: {
    env: 'INTAKE_GRAPH_MOVE_TO',
    schema: z.string().min(1),
    default: 'intake',
    doc: 'The folder `graph_after=move` moves messages to, named as `graph_folder` is; created when missing.',
  },
  graph_poll_interval_ms: {
    env: 'INTAKE_GRAPH_POLL_INTERVAL_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(1000).max(3_600_000),
    default: 60000,
    doc: 'How often the folder is listed (Graph has no push without a public HTTPS endpoint). Each poll is one request plus one per 200 messages; Graph allows 10,000 a mailbox every 10 minutes, and a throttled poll waits as long as Graph asks (Retry-After).',
  },
  graph_login_endpoint: {
    env: 'INTAKE_GRAPH_LOGIN_ENDPOINT',
    schema: httpsOrigin,
    default: 'https://login.microsoftonline.com',
    doc: 'Where tokens are asked for: Microsoft Entra ID, or a national cloud\'s (`https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`).',
  },
  graph_endpoint: {
    env: 'INTAKE_GRAPH_ENDPOINT',
    schema: httpsOrigin,
    default: 'https://graph.microsoft.com',
    doc: 'Microsoft Graph, or a national cloud\'s (`https://graph.microsoft.us`, `https://microsoftgraph.chinacloudapi.cn`).',
  },
  group_commit: {
    env: 'INTAKE_GROUP_COMMIT',
    schema: booleanFlag,
    default: true,
    doc: 'Commit the messages that finish in the same moment in one transaction, one disk flush for all, before any of them is acknowledged; off: one transaction and flush per message.',
  },
  shutdown_timeout_ms: {
    env: 'INTAKE_SHUTDOWN_TIMEOUT_MS',
    schema: wholeNumber('expected a whole number (digits only, no unit)').int().min(0).max(600_000),
    default: 30000,
    doc: 'On SIGTERM, how long messages being received may take to finish before their sessions are cut (they are not acknowledged, so the sender retries).',
  },
  log_level: {
    env: 'INTAKE_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    doc: 'pino log level; logs are JSON lines on stdout.',
  },
} as const;

type Settings = typeof SETTINGS;
export type SettingKey = keyof Settings;
export type Config = { [K in SettingKey]: z.output<Settings[K]['schema']> };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/**
 * Builds the configuration from a config file (optional) and the environment; the environment wins.
 * Throws ConfigError listing one line per problem, each naming the key.
 * @example loadConfig({ env: { INTAKE_SMTP_LISTEN: '127.0.0.1:0' } }).smtp_listen // '127.0.0.1:0'
 */
export function loadConfig(options: { env?: NodeJS.ProcessEnv; file?: string } = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const fromFile = options.file ? readConfigFile(options.file, problems) : {};
  const keys = Object.keys(SETTINGS) as SettingKey[];
  const knownEnv = new Set(keys.map((k) => SETTINGS[k].env as string));
  for (const name of Object.keys(env)) {
    if (name.startsWith('INTAKE_') && !knownEnv.has(name)) {
      problems.push(`${name}: unknown setting (known: ${[...knownEnv].join(', ')})`);
    }
  }
  for (const name of Object.keys(fromFile)) {
    if (name in SETTINGS) continue;
    // The environment's names in a YAML or JSON file: say which names a file takes.
    const byEnv = keys.find((k) => SETTINGS[k].env === name);
    const hint = byEnv ? `; in a YAML or JSON file it is ${byEnv} (a file of ${name}=value lines must end in .env)` : ` (known: ${keys.join(', ')})`;
    problems.push(`${options.file}: ${name}: unknown setting${hint}`);
  }
  const config: Record<string, unknown> = {};
  for (const key of keys) {
    const setting = SETTINGS[key];
    const envValue = env[setting.env];
    const [raw, source] =
      envValue !== undefined
        ? [envValue, setting.env]
        : key in fromFile
          ? [fromFile[key], `${options.file}: ${key}`]
          : [setting.default, `${setting.env} (default)`];
    // An empty value in YAML or JSON (`key:`) means none, as an empty variable does.
    const given = raw === null ? '' : raw;
    if (given === '' && typeof setting.default !== 'string' && !Array.isArray(setting.default)) {
      problems.push(`${source}: empty; give a value, or leave it out for the default (${JSON.stringify(setting.default)})`);
      continue;
    }
    const parsed = (setting.schema as z.ZodType).safeParse(given);
    if (parsed.success) config[key] = parsed.data;
    else for (const issue of parsed.error.issues) problems.push(`${source}: ${issue.message} (got ${JSON.stringify(given)})`);
  }
  if (problems.length === 0) problems.push(...crossCheck(config as Config));
  if (problems.length > 0) throw new ConfigError(problems);
  return config as Config;
}

/**
 * Why `intake serve` would have nothing to run, or null. Only serve asks: `intake deliver`, run by an
 * MTA's pipe, and the admin commands need no listener, and a pipe-only setup has none.
 */
export function nothingToServe(config: Config): string | null {
  if (config.smtp_listen || config.lmtp_listen || config.smtps_listen || config.policy_listen || config.imap_host || config.graph_user) return null;
  return 'INTAKE_SMTP_LISTEN: every listener is empty; set at least one of INTAKE_SMTP_LISTEN, INTAKE_LMTP_LISTEN, INTAKE_SMTPS_LISTEN, INTAKE_POLICY_LISTEN (or fetch with INTAKE_IMAP_HOST or INTAKE_GRAPH_USER)';
}

/** Problems no single setting shows: settings that need each other. */
function crossCheck(config: Config): string[] {
  const problems: string[] = [];
  if (config.imap_host) {
    if (!config.imap_user) problems.push('INTAKE_IMAP_USER: INTAKE_IMAP_HOST needs a user to log in as');
    if (Boolean(config.imap_password) === Boolean(config.imap_password_file)) {
      problems.push(`INTAKE_IMAP_PASSWORD: INTAKE_IMAP_HOST needs ${config.imap_password ? 'one of INTAKE_IMAP_PASSWORD and INTAKE_IMAP_PASSWORD_FILE, not both' : 'INTAKE_IMAP_PASSWORD or INTAKE_IMAP_PASSWORD_FILE'}`);
    }
    // INBOX is INBOX in any case (RFC 3501 5.1); other names are the server's to compare.
    const folder = (name: string) => (name.toUpperCase() === 'INBOX' ? 'INBOX' : name);
    if (config.imap_after === 'move' && folder(config.imap_move_to) === folder(config.imap_mailbox)) {
      problems.push(`INTAKE_IMAP_MOVE_TO: ${config.imap_move_to} is the folder fetched from (INTAKE_IMAP_MAILBOX): moved there, a message would come back as a new one`);
    }
    // Fetched mail is taken as sent to the mailbox address, then routed by its headers.
    if (compileTemplate(config.address).mailbox === null) {
      problems.push(`INTAKE_IMAP_HOST: the address template ${config.address} has no mailbox address (its local part is only %{key}) for fetched mail to be taken as sent to`);
    }
  }
  if (config.graph_user) {
    if (!config.graph_tenant_id) problems.push('INTAKE_GRAPH_TENANT_ID: INTAKE_GRAPH_USER needs the directory (tenant) ID of the mailbox');
    if (!config.graph_client_id) problems.push("INTAKE_GRAPH_CLIENT_ID: INTAKE_GRAPH_USER needs the app registration's application (client) ID");
    if (Boolean(config.graph_client_secret) === Boolean(config.graph_client_secret_file)) {
      problems.push(`INTAKE_GRAPH_CLIENT_SECRET: INTAKE_GRAPH_USER needs ${config.graph_client_secret ? 'one of INTAKE_GRAPH_CLIENT_SECRET and INTAKE_GRAPH_CLIENT_SECRET_FILE, not both' : 'INTAKE_GRAPH_CLIENT_SECRET or INTAKE_GRAPH_CLIENT_SECRET_FILE'}`);
    }
    const folders = (['graph_folder', 'graph_move_to'] as const).map((key) => {
      try {
        folderPath(config[key]);
        return true;
      } catch (error) {
        problems.push(`INTAKE_${key.toUpperCase()}: ${(error as Error).message}`);
        return false;
      }
    });
    if (config.graph_after === 'move' && folders.every(Boolean) && sameFolder(config.graph_move_to, config.graph_folder)) {
      problems.push(`INTAKE_GRAPH_MOVE_TO: ${config.graph_move_to} is the folder fetched from (INTAKE_GRAPH_FOLDER): moved there, a message would come back as a new one`);
    }
    if (compileTemplate(config.address).mailbox === null) {
      problems.push(`INTAKE_GRAPH_USER: the address template ${config.address} has no mailbox address (its local part is only %{key}) for fetched mail to be taken as sent to`);
    }
  }
  if (config.service_desk_address && !compileTemplate(config.address).hasKey) {
    // As GitLab's ServiceDesk.supported?: a Service Desk needs keys at the address template.
    problems.push(`INTAKE_SERVICE_DESK_ADDRESS: needs an address template with %{key} (INTAKE_ADDRESS is ${config.address}): without one there is no Service Desk`);
  } else if (config.service_desk_address) {
    // The address template reads every address first: one that takes the alias's addresses as its own
    // keys (the same template, or a catch-all `%{key}@` at the same domain) leaves the alias nothing.
    const alias = compileTemplate(config.service_desk_address).format('project-1-issue-');
    if (compileTemplate(config.address).match(alias).kind === 'key') {
      problems.push(`INTAKE_SERVICE_DESK_ADDRESS: its addresses (${alias}) are taken by the address template ${config.address} first, as keys of its own: give the alias a local part or a domain the address template does not take, or leave it empty`);
    }
  }
  if (Boolean(config.tls_cert_file) !== Boolean(config.tls_key_file)) {
    problems.push(`${config.tls_cert_file ? 'INTAKE_TLS_KEY_FILE' : 'INTAKE_TLS_CERT_FILE'}: TLS needs both a certificate and a key file`);
  }
  if (!config.tls_cert_file && config.require_tls) problems.push('INTAKE_REQUIRE_TLS: needs INTAKE_TLS_CERT_FILE and INTAKE_TLS_KEY_FILE');
  if (!config.tls_cert_file && config.smtps_listen) problems.push('INTAKE_SMTPS_LISTEN: needs INTAKE_TLS_CERT_FILE and INTAKE_TLS_KEY_FILE');
  return problems;
}

function readConfigFile(file: string, problems: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push(`--config ${file}: cannot read: ${(error as Error).message}`);
    return {};
  }
  if (file.endsWith('.env')) return parseEnvFile(file, text, problems);
  try {
    const value: unknown = file.endsWith('.json') ? JSON.parse(text) : (require('yaml') as typeof import('yaml')).parse(text);
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`--config ${file}: expected a mapping of setting names to values${typeof value === 'string' && /^[A-Za-z_]+=/.test(value) ? ' (a file of INTAKE_X=value lines must end in .env)' : ''}`);
      return {};
    }
    return value as Record<string, unknown>;
  } catch (error) {
    problems.push(`--config ${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
    return {};
  }
}

/**
 * A systemd EnvironmentFile (`INTAKE_X=value` lines, `#` comments, optional quotes), so that the service
 * and `intake deliver` run from Postfix's pipe(8) (which passes no environment) read one file.
 */
function parseEnvFile(file: string, text: string, problems: string[]): Record<string, unknown> {
  const byEnv = new Map(Object.entries(SETTINGS).map(([key, setting]) => [setting.env as string, key]));
  const values: Record<string, unknown> = {};
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const match = /^(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(trimmed);
    if (!match) {
      problems.push(`--config ${file}: line ${index + 1}: expected INTAKE_NAME=value, the environment's upper-case names (as in deploy/intake.env)`);
      return;
    }
    const [, name, rawValue] = match as unknown as [string, string, string];
    const key = byEnv.get(name);
    if (!key) {
      problems.push(`--config ${file}: line ${index + 1}: ${name}: unknown setting`);
      return;
    }
    values[key] = /^(["']).*\1$/.test(rawValue) ? rawValue.slice(1, -1) : rawValue;
  });
  return values;
}

export interface HostPort {
  host: string;
  port: number;
}

/** @example parseHostPort('[::1]:25') // { host: '::1', port: 25 } */
export function parseHostPort(value: string): HostPort | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  if (!match) return null;
  const port = Number(match[3]);
  if (port > 65535) return null;
  return { host: (match[1] ?? match[2]) as string, port };
}

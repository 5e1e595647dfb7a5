// A raw SMTP client over TCP for tests: every reply line is returned as sent, so tests assert exact text.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export interface SmtpReply {
  code: number;
  /** All lines of the reply, each without CRLF. */
  lines: string[];
  /** The last line, e.g. "250 2.6.0 Message accepted as inbound message 1". */
  line: string;
}

export class SmtpClient {
  private buffer = '';
  private waiters: (() => void)[] = [];
  private closed = false;

  private constructor(private socket: Socket) {
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects (from localAddress, e.g. 127.0.0.2 to play a relay); `preface` is written before the greeting is read (a PROXY header). */
  static async connect(port: number, options: { preface?: string; localAddress?: string } = {}): Promise<{ client: SmtpClient; greeting: SmtpReply }> {
    const socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    if (options.preface) client.write(options.preface);
    return { client, greeting: await client.read() };
  }

  /** Connects to an implicit-TLS listener (any certificate is taken: the test checks it itself). */
  static async connectTls(port: number, options: { localAddress?: string } = {}): Promise<{ client: SmtpClient; greeting: SmtpReply; fingerprint256: string }> {
    // localAddress goes on to the TCP connection, as net.connect's does (tls's types leave it out).
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, localAddress: options.localAddress } as ConnectionOptions);
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    return { client, greeting: await client.read(), fingerprint256: socket.getPeerCertificate().fingerprint256 };
  }

  /** STARTTLS on this connection; resolves to the server certificate's fingerprint. */
  async startTls(): Promise<string> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.line}`);
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure: TLSSocket = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return secure.getPeerCertificate().fingerprint256;
  }

  /** Reads n replies in a row (LMTP answers DATA once per recipient). */
  async readMany(n: number): Promise<SmtpReply[]> {
    const replies: SmtpReply[] = [];
    for (let i = 0; i < n; i++) replies.push(await this.read());
    return replies;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Reads one complete (possibly multi-line) reply. */
  async read(timeoutMs = 20_000): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines: string[] = [];
      let offset = 0;
      for (;;) {
        const end = this.buffer.indexOf('\r\n', offset);
        if (end === -1) break;
        const line = this.buffer.slice(offset, end);
        offset = end + 2;
        lines.push(line);
        if (/^\d{3}(?: |$)/.test(line)) {
          this.buffer = this.buffer.slice(offset);
          return { code: Number(line.slice(0, 3)), lines, line };
        }
      }
      if (this.closed) throw new Error(`connection closed while waiting for a reply; got ${JSON.stringify(this.buffer)}`);
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; got ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<SmtpReply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  /** Sends DATA, the message (dot-stuffed), the end marker; returns [354 reply, final reply]. */
  async data(message: string | Buffer): Promise<[SmtpReply, SmtpReply]> {
    const go = await this.command('DATA');
    if (go.code !== 354) return [go, go];
    // Text is sent with CRLF line ends; a Buffer is sent byte for byte (only dot-stuffed), so tests can
    // send bare LF, NUL and invalid UTF-8.
    const text = Buffer.isBuffer(message) ? message.toString('latin1') : Buffer.from(message, 'utf8').toString('latin1').replace(/\r?\n/g, '\r\n');
    const stuffed = Buffer.from(text.replace(/(^|\r\n)\./g, '$1..'), 'latin1');
    this.write(stuffed);
    this.write(stuffed.subarray(-2).toString() === '\r\n' ? '.\r\n' : '\r\n.\r\n');
    return [go, await this.read()];
  }

  /** Closes the connection at once, as a client that crashes or loses its network. */
  destroy(): void {
    this.socket.destroy();
  }

  async quit(): Promise<void> {
    if (!this.closed) {
      this.write('QUIT\r\n');
      await new Promise<void>((resolve) => {
        if (this.closed) resolve();
        else this.socket.once('close', () => resolve());
        setTimeout(resolve, 2000);
      });
    }
    this.socket.destroy();
  }
}

/** One whole transaction: EHLO, MAIL, RCPTs, DATA. Returns every reply in order. */
export async function sendMail(
  port: number,
  options: { from: string; to: string[]; message: string | Buffer },
): Promise<{ rcpt: SmtpReply[]; data: SmtpReply }> {
  const { client } = await SmtpClient.connect(port);
  try {
    await client.command('EHLO test.example');
    const mail = await client.command(`MAIL FROM:<${options.from}>`);
    if (mail.code !== 250) throw new Error(`MAIL FROM refused: ${mail.line}`);
    const rcpt: SmtpReply[] = [];
    for (const to of options.to) rcpt.push(await client.command(`RCPT TO:<${to}>`));
    const [, data] = await client.data(options.message);
    return { rcpt, data };
  } finally {
    await client.quit();
  }
}

/** The reply to one RCPT TO in a session of its own (EHLO, MAIL FROM, RCPT TO, QUIT). */
export async function rcptReply(port: number, address: string, from = 'jake@adventuretime.ooo'): Promise<string> {
  const { client } = await SmtpClient.connect(port);
  try {
    await client.command('EHLO client.test');
    await client.command(`MAIL FROM:<${from}>`);
    return (await client.command(`RCPT TO:<${address}>`)).line;
  } finally {
    await client.quit();
  }
}

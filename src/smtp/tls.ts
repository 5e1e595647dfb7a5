// tls: reads and checks the certificate and key files STARTTLS and the implicit-TLS listener use.
// Input: operator-supplied files. Side effects: reads them (at start, on SIGHUP, in `intake check`).
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
  subject: string;
  notAfter: Date;
  fingerprint256: string;
}

/** A certificate or key file that cannot be used, said in one line naming the file. */
export class TlsFileError extends Error {
  override name = 'TlsFileError';
}

/**
 * Reads the PEM files and checks what a handshake would find out too late: that both parse, that the
 * key belongs to the certificate. Expiry is reported (expiredAt), not refused: see the caller.
 */
export function loadTlsMaterial(certFile: string, keyFile: string): TlsMaterial {
  const cert = readPem(certFile, 'certificate');
  const key = readPem(keyFile, 'key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw new TlsFileError(`${certFile}: not a PEM certificate (${(error as Error).message})`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TlsFileError(`${keyFile}: not a PEM private key (${(error as Error).message})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new TlsFileError(`${keyFile}: this key does not belong to the certificate in ${certFile}`);
  try {
    createSecureContext({ key, cert });
  } catch (error) {
    throw new TlsFileError(`${certFile}: OpenSSL refuses this certificate and key: ${(error as Error).message}`);
  }
  return { key, cert, subject: x509.subject.replace(/\n/g, ', '), notAfter: new Date(x509.validTo), fingerprint256: x509.fingerprint256 };
}

/** Why a loaded certificate will be refused by careful clients now, or null. */
export function expiryProblem(material: TlsMaterial, now = new Date()): string | null {
  return material.notAfter.getTime() <= now.getTime() ? `certificate expired on ${material.notAfter.toISOString()}` : null;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw new TlsFileError(`${file}: cannot read the TLS ${what}: ${reason}`);
  }
}

// Self-signed certificates for TLS tests, with any validity period (openssl 3.0's `req` cannot make
// an expired one): the key comes from node's crypto, the certificate is built and signed by node-forge.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
  /** SHA-256 fingerprint as node's X509Certificate.fingerprint256 prints it. */
  fingerprint256: string;
}

export function writeCertificate(dir: string, name: string, options: { commonName?: string; notBefore?: Date; notAfter?: Date; ipAddress?: string } = {}): CertificateFiles {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = `01${Math.floor(Math.random() * 1e12).toString(16)}`;
  cert.validity.notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notAfter = options.notAfter ?? new Date(Date.now() + 30 * 86_400_000);
  const attrs = [{ name: 'commonName', value: options.commonName ?? name }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  // type 2: a DNS name; 7: an IP address, for a server reached by its address.
  const altNames: object[] = [{ type: 2, value: options.commonName ?? name }];
  if (options.ipAddress) altNames.push({ type: 7, ip: options.ipAddress });
  cert.setExtensions([{ name: 'subjectAltName', altNames }]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, certPem);
  writeFileSync(keyFile, keyPem);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  const digest = forge.md.sha256.create().update(der.toString('binary')).digest().toHex().toUpperCase();
  return { certFile, keyFile, fingerprint256: digest.match(/../g)?.join(':') ?? '' };
}

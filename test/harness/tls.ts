/**
 * A throw-away PKI for TLS tests: a self-signed CA and one server certificate
 * for 127.0.0.1/localhost, made with the openssl command line (RSA 2048, PKCS#8
 * keys, valid 2 days). Nothing leaves the temp dir.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface TestPki {
  /** PEM CA certificate: what clients trust (the chart's `ca.crt` Secret key). */
  caFile: string;
  /** PEM server certificate, signed by the CA, SAN IP:127.0.0.1 and DNS:localhost. */
  certFile: string;
  /** PEM PKCS#8 private key of the server certificate, unencrypted. */
  keyFile: string;
  /** key + certificate + CA in one PEM file (Kafka's ssl.keystore.type=PEM). */
  keystoreFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd, timeout: 30_000 });
  } catch (err) {
    const e = err as { message?: string; stderr?: string };
    throw new Error(`openssl ${args[0] ?? ''} failed (install it: scripts/provision/apt-package.sh openssl - - openssl): ${e.message ?? String(err)} ${e.stderr ?? ''}`, { cause: err });
  }
}

export async function makeTestPki(dir: string): Promise<TestPki> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string): string => path.join(dir, f);
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=nodewarden test CA'], dir);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  fs.writeFileSync(p('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.cnf'], dir);
  fs.writeFileSync(p('server.pem'), [fs.readFileSync(p('server.key'), 'utf8'), fs.readFileSync(p('server.crt'), 'utf8'), fs.readFileSync(p('ca.crt'), 'utf8')].join(''), { mode: 0o600 });
  return { caFile: p('ca.crt'), certFile: p('server.crt'), keyFile: p('server.key'), keystoreFile: p('server.pem') };
}

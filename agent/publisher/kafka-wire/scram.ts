/**
 * SASL SCRAM-SHA-256 / SCRAM-SHA-512 client (RFC 5802, RFC 7677) as Kafka
 * runs it inside SaslAuthenticate: no channel binding (gs2 header "n,,"),
 * the server's nonce must extend ours, its iteration count is bounded
 * (Kafka's own range is 4096..16384), and the server's signature is checked.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

export type ScramMechanism = 'scram-sha-256' | 'scram-sha-512';
const MAX_ITERATIONS = 16_384;

const saslName = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');

function attrs(msg: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) m.set(part.slice(0, 1), part.slice(2));
  }
  return m;
}

export class ScramClient {
  private readonly hash: 'sha256' | 'sha512';
  private readonly bare: string;
  private authMessage = '';
  private serverKey: Buffer | null = null;

  constructor(
    mechanism: ScramMechanism,
    username: string,
    private readonly password: string,
    private readonly nonce = randomBytes(24).toString('base64'),
  ) {
    this.hash = mechanism === 'scram-sha-256' ? 'sha256' : 'sha512';
    this.bare = `n=${saslName(username)},r=${nonce}`;
  }

  static saslMechanism(m: ScramMechanism): string {
    return m === 'scram-sha-256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-512';
  }

  firstMessage(): string {
    return `n,,${this.bare}`;
  }

  async finalMessage(serverFirst: string): Promise<string> {
    const a = attrs(serverFirst);
    const nonce = a.get('r');
    const salt = a.get('s');
    const iterations = Number(a.get('i'));
    if (a.has('e')) throw new Error(`SCRAM: server error ${a.get('e') ?? ''}`);
    if (nonce === undefined || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw new Error('SCRAM: server nonce does not extend the client nonce');
    if (salt === undefined || salt === '') throw new Error('SCRAM: no salt');
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new Error(`SCRAM: iteration count ${a.get('i') ?? ''} out of range`);
    const len = this.hash === 'sha256' ? 32 : 64;
    const salted = await new Promise<Buffer>((resolve, reject) =>
      pbkdf2(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, len, this.hash, (err, key) => (err ? reject(err) : resolve(key))),
    );
    const hmac = (key: Buffer, data: string): Buffer => createHmac(this.hash, key).update(data).digest();
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash(this.hash).update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    this.authMessage = `${this.bare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, this.authMessage);
    const proof = Buffer.alloc(len);
    for (let i = 0; i < len; i++) proof[i] = (clientKey[i] as number) ^ (signature[i] as number);
    this.serverKey = hmac(salted, 'Server Key');
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Throws unless the server proved it knows the password too. */
  verifyServerFinal(serverFinal: string): void {
    const a = attrs(serverFinal);
    if (a.has('e')) throw new Error(`SCRAM: server error ${a.get('e') ?? ''}`);
    if (!this.serverKey) throw new Error('SCRAM: server final before client final');
    const expected = createHmac(this.hash, this.serverKey).update(this.authMessage).digest();
    const got = Buffer.from(a.get('v') ?? '', 'base64');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new Error('SCRAM: server signature mismatch');
  }
}

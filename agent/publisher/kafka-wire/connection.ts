/**
 * One TCP (or TLS) connection to one Kafka broker: ApiVersions check, SASL
 * (PLAIN, SCRAM-SHA-256/512 over SaslHandshake v1 + SaslAuthenticate v1),
 * then requests strictly one at a time (one in flight, FIFO). Every read is
 * bounded: a frame larger than `maxFrameBytes`, a response without a request
 * or with the wrong correlation id, or an undecodable body closes the
 * connection with a clear error. No timer runs while the connection is idle:
 * the connect and request timers exist only while something is awaited.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SaslOptions, TlsClientOptions } from '../../../adapters/transport-security.js';
import { MalformedResponseError, Reader } from './codec.js';
import type { Writer } from './codec.js';
import {
  API,
  decodeApiVersions,
  decodeSaslAuthenticate,
  decodeSaslHandshake,
  encodeSaslAuthenticate,
  encodeSaslHandshake,
  ERR,
  frame,
  KafkaProtocolError,
  unsupportedApi,
} from './protocol.js';
import type { ApiKey } from './protocol.js';
import { ScramClient } from './scram.js';

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export class KafkaConnectionError extends Error {
  readonly retriable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaConnectionError';
  }
}

export interface ConnectionOptions {
  host: string;
  port: number;
  clientId: string;
  ssl: boolean | TlsClientOptions;
  sasl?: SaslOptions | undefined;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxFrameBytes?: number;
}

interface Pending {
  correlationId: number;
  resolve: (body: Buffer) => void;
  reject: (err: Error) => void;
}

/** APIs every connection needs the broker to support in our versions. */
const NEEDED: readonly ApiKey[] = [API.Metadata, API.Produce, API.InitProducerId];

export class BrokerConnection {
  private socket: net.Socket | null = null;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pending: Pending | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private nextCorrelationId = 1;
  private closedWith: Error | null = null;
  private readonly maxFrame: number;

  constructor(private readonly opts: ConnectionOptions) {
    this.maxFrame = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  get address(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }
  get isOpen(): boolean {
    return this.socket !== null && this.closedWith === null;
  }

  /** Opens the socket, checks API versions, authenticates. Rejects (and closes) on any failure. */
  async connect(): Promise<void> {
    await this.open();
    try {
      const needed: ApiKey[] = [...NEEDED];
      if (this.opts.sasl) needed.push(API.SaslHandshake, API.SaslAuthenticate);
      const v = await this.request(API.ApiVersions, () => undefined, decodeApiVersions);
      if (v.errorCode !== ERR.NONE) throw new KafkaProtocolError(v.errorCode, `ApiVersions from ${this.address}`);
      const missing = unsupportedApi(v.apis, needed);
      if (missing) throw new Error(`kafka broker ${this.address} does not support ${missing}`);
      if (this.opts.sasl) await this.authenticate(this.opts.sasl);
    } catch (err) {
      this.close(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  private open(): Promise<void> {
    const { host, port, ssl, connectTimeoutMs } = this.opts;
    return new Promise<void>((resolve, reject) => {
      const options = ssl === false ? null : { host, port, ...(net.isIP(host) ? {} : { servername: host }), ...(ssl === true ? {} : { ca: ssl.ca, rejectUnauthorized: true }) };
      const socket = options ? tls.connect(options) : net.connect({ host, port });
      const ready = options ? 'secureConnect' : 'connect';
      let done = false;
      const timer = setTimeout(() => fail(new KafkaConnectionError(`kafka connect to ${this.address} timed out after ${connectTimeoutMs} ms`)), connectTimeoutMs);
      const fail = (err: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err instanceof KafkaConnectionError ? err : new KafkaConnectionError(`kafka connect to ${this.address}: ${err.message}`, { cause: err }));
      };
      socket.once('error', fail);
      socket.once(ready, () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.removeListener('error', fail);
        socket.setNoDelay(true);
        this.socket = socket;
        socket.on('data', (d: Buffer) => this.onData(d));
        socket.on('error', (err: Error) => this.close(new KafkaConnectionError(`kafka connection to ${this.address}: ${err.message}`, { cause: err })));
        socket.on('close', () => this.close(new KafkaConnectionError(`kafka connection to ${this.address} closed`)));
        resolve();
      });
    });
  }

  private async authenticate(sasl: SaslOptions): Promise<void> {
    const mech = sasl.mechanism === 'plain' ? 'PLAIN' : ScramClient.saslMechanism(sasl.mechanism);
    const hs = await this.request(API.SaslHandshake, encodeSaslHandshake(mech), decodeSaslHandshake);
    if (hs.errorCode !== ERR.NONE) throw new KafkaProtocolError(hs.errorCode, `SaslHandshake ${mech} (broker offers ${hs.mechanisms.join(', ')})`);
    const exchange = async (bytes: Buffer): Promise<Buffer> => {
      const r = await this.request(API.SaslAuthenticate, encodeSaslAuthenticate(bytes), decodeSaslAuthenticate);
      if (r.errorCode !== ERR.NONE) throw new KafkaProtocolError(r.errorCode, `SASL ${mech} authentication as ${sasl.username}${r.errorMessage ? ` (${r.errorMessage})` : ''}`);
      return r.bytes;
    };
    if (sasl.mechanism === 'plain') {
      await exchange(Buffer.from(`\0${sasl.username}\0${sasl.password}`, 'utf8'));
      return;
    }
    const scram = new ScramClient(sasl.mechanism, sasl.username, sasl.password);
    const serverFirst = (await exchange(Buffer.from(scram.firstMessage(), 'utf8'))).toString('utf8');
    const serverFinal = (await exchange(Buffer.from(await scram.finalMessage(serverFirst), 'utf8'))).toString('utf8');
    scram.verifyServerFinal(serverFinal);
  }

  /** Sends one request after the previous one on this connection has settled; resolves with the decoded body. */
  request<T>(api: ApiKey, body: (w: Writer) => void, decode: (r: Reader) => T): Promise<T> {
    const run = async (): Promise<T> => {
      const raw = await this.roundTrip(api, body);
      const r = new Reader(raw);
      try {
        return decode(r);
      } catch (err) {
        const e = err instanceof MalformedResponseError ? err : new MalformedResponseError(String(err));
        this.close(e);
        throw e;
      }
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  private roundTrip(api: ApiKey, body: (w: Writer) => void): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const socket = this.socket;
      if (!socket || this.closedWith) {
        reject(this.closedWith ?? new KafkaConnectionError(`kafka connection to ${this.address} is not open`));
        return;
      }
      const correlationId = this.nextCorrelationId;
      this.nextCorrelationId = (this.nextCorrelationId + 1) & 0x7fffffff;
      const timer = setTimeout(
        () => this.close(new KafkaConnectionError(`kafka request (api ${api}) to ${this.address} timed out after ${this.opts.requestTimeoutMs} ms`)),
        this.opts.requestTimeoutMs,
      );
      this.pending = {
        correlationId,
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      socket.write(frame(api, correlationId, this.opts.clientId, body));
    });
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    while (this.buffered >= 4 && !this.closedWith) {
      const head = this.chunks[0] && this.chunks[0].length >= 4 ? this.chunks[0] : this.collapse();
      const size = head.readInt32BE(0);
      if (size < 4 || size > this.maxFrame) {
        this.close(new MalformedResponseError(`frame of ${size} bytes from ${this.address} (limit ${this.maxFrame})`));
        return;
      }
      if (this.buffered < size + 4) return;
      const all = this.collapse();
      const frameBuf = all.subarray(4, size + 4);
      const rest = all.subarray(size + 4);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.onFrame(frameBuf);
    }
  }

  private collapse(): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }

  private onFrame(f: Buffer): void {
    const p = this.pending;
    const correlationId = f.readInt32BE(0);
    if (!p || p.correlationId !== correlationId) {
      this.close(new MalformedResponseError(`response with correlation id ${correlationId} from ${this.address}, expected ${p ? p.correlationId : 'none'}`));
      return;
    }
    this.pending = null;
    p.resolve(f.subarray(4));
  }

  /** Closes the socket and fails the request in flight (idempotent). */
  close(reason: Error = new KafkaConnectionError(`kafka connection to ${this.address} closed by the client`)): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    this.chunks = [];
    this.buffered = 0;
    const p = this.pending;
    this.pending = null;
    this.socket?.destroy();
    p?.reject(reason);
  }
}

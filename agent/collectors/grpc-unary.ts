/**
 * The smallest gRPC client the containerd probe needs: unary calls over one
 * HTTP/2 session (node:http2) on a unix socket or plain host:port, with a
 * deadline, and a protobuf reader for the two tiny answers it decodes.
 *
 * Why not @grpc/grpc-js + @grpc/proto-loader: loading them (and protobufjs
 * behind them, ~110 modules) cost the agent ~7 MiB RSS at steady state, more
 * than its whole remaining margin (ADR 0016). The probe sends two empty
 * requests and reads an enum and a list of conditions; that is ~150 lines.
 *
 * Wire format (grpc/PROTOCOL-HTTP2.md): POST /<service>/<method>,
 * `content-type: application/grpc`, `te: trailers`, body = 1 byte compressed
 * flag (0) + 4-byte big-endian length + message. The status is `grpc-status`
 * in the trailers, or in the headers of a trailers-only answer.
 */
import http2 from 'node:http2';
import net from 'node:net';

/** gRPC status codes this client reports (google.rpc.Code). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export class GrpcError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${code} ${codeName(code)}: ${details}`);
    this.name = 'GrpcError';
  }
}

function codeName(code: number): string {
  for (const [k, v] of Object.entries(GrpcCode)) if (v === code) return k;
  return `CODE_${code}`;
}

/** Largest answer accepted: containerd's Status info map is small unless verbose. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface UnaryChannel {
  /** One unary call; rejects with GrpcError. */
  call(path: string, request: Uint8Array): Promise<Buffer>;
  close(): void;
}

/**
 * Opens one HTTP/2 session to `target` (`unix:///path`, `unix:/path`, or
 * `host:port`, optionally `dns:` prefixed). Every call on it fails with
 * DEADLINE_EXCEEDED at `deadline` (epoch ms), and with UNAVAILABLE when the
 * connection cannot be made or breaks.
 */
export function openUnaryChannel(target: string, deadline: number): UnaryChannel {
  let socketPath: string | null = null;
  let authority = 'localhost';
  if (target.startsWith('unix://')) socketPath = target.slice('unix://'.length);
  else if (target.startsWith('unix:')) socketPath = target.slice('unix:'.length);
  else authority = target.replace(/^dns:(\/\/[^/]*\/)?/, '');
  const session = http2.connect(
    `http://${authority}`,
    socketPath !== null ? { createConnection: () => net.connect(socketPath) } : {},
  );
  let sessionError: Error | null = null;
  const failers = new Set<(e: GrpcError) => void>();
  const failAll = (e: GrpcError) => {
    for (const f of [...failers]) f(e);
  };
  session.on('error', (err: Error) => {
    sessionError = err;
    failAll(new GrpcError(GrpcCode.UNAVAILABLE, err.message));
  });
  session.on('close', () => failAll(new GrpcError(GrpcCode.UNAVAILABLE, sessionError?.message ?? 'connection closed')));

  return {
    call(path: string, request: Uint8Array): Promise<Buffer> {
      return new Promise<Buffer>((resolve, reject) => {
        if (sessionError) return reject(new GrpcError(GrpcCode.UNAVAILABLE, sessionError.message));
        const remaining = deadline - Date.now();
        if (remaining <= 0) return reject(new GrpcError(GrpcCode.DEADLINE_EXCEEDED, 'deadline exceeded before the call'));
        let done = false;
        let stream: http2.ClientHttp2Stream | null = null;
        const finish = (err: GrpcError | null, value?: Buffer) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          failers.delete(fail);
          if (stream && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          if (err) reject(err);
          else resolve(value as Buffer);
        };
        const fail = (e: GrpcError) => finish(e);
        failers.add(fail);
        const timer = setTimeout(() => finish(new GrpcError(GrpcCode.DEADLINE_EXCEEDED, 'deadline exceeded')), remaining);
        try {
          stream = session.request({
            ':method': 'POST',
            ':path': path,
            'content-type': 'application/grpc',
            te: 'trailers',
            'grpc-timeout': `${Math.max(1, remaining)}m`,
          });
        } catch (err) {
          return finish(new GrpcError(GrpcCode.UNAVAILABLE, err instanceof Error ? err.message : String(err)));
        }
        const frame = Buffer.alloc(5 + request.length);
        frame.writeUInt32BE(request.length, 1);
        frame.set(request, 5);
        stream.end(frame);

        const chunks: Buffer[] = [];
        let size = 0;
        let status: number | null = null;
        let message = '';
        let httpStatus = 0;
        const takeStatus = (h: http2.IncomingHttpHeaders) => {
          const s = h['grpc-status'];
          if (typeof s === 'string') {
            status = Number(s);
            const m = h['grpc-message'];
            message = typeof m === 'string' ? safeDecode(m) : '';
          }
        };
        stream.on('response', (h) => {
          httpStatus = Number(h[':status']);
          takeStatus(h);
        });
        stream.on('trailers', (h: http2.IncomingHttpHeaders) => takeStatus(h));
        stream.on('data', (d: Buffer) => {
          size += d.length;
          if (size > 5 + MAX_MESSAGE_BYTES) return finish(new GrpcError(GrpcCode.INTERNAL, `answer larger than ${MAX_MESSAGE_BYTES} bytes`));
          chunks.push(d);
        });
        stream.on('error', (err: Error) => finish(new GrpcError(GrpcCode.UNAVAILABLE, err.message)));
        stream.on('close', () => {
          if (status === null) {
            return finish(new GrpcError(httpStatus !== 0 && httpStatus !== 200 ? GrpcCode.UNKNOWN : GrpcCode.UNAVAILABLE, httpStatus ? `HTTP ${httpStatus} without grpc-status` : 'stream closed without an answer'));
          }
          if (status !== GrpcCode.OK) return finish(new GrpcError(status, message || codeName(status)));
          const body = Buffer.concat(chunks);
          if (body.length === 0) return finish(null, Buffer.alloc(0));
          if (body.length < 5) return finish(new GrpcError(GrpcCode.INTERNAL, 'truncated answer'));
          if (body[0] !== 0) return finish(new GrpcError(GrpcCode.INTERNAL, 'compressed answer not supported'));
          const len = body.readUInt32BE(1);
          if (body.length < 5 + len) return finish(new GrpcError(GrpcCode.INTERNAL, 'truncated answer'));
          finish(null, body.subarray(5, 5 + len));
        });
      });
    },
    close(): void {
      if (!session.destroyed) session.destroy();
    },
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ------------------------------------------------------------- protobuf reading

/** One field of a protobuf message: varint value, or the bytes of a length-delimited field. */
export type ProtoField = { no: number; varint: number; bytes: null } | { no: number; varint: null; bytes: Buffer };

/**
 * Splits a protobuf message into its fields (wire types 0, 1, 2, 5; 64-bit and
 * 32-bit fixed fields are skipped as the probe reads none). Throws on a
 * malformed message.
 */
export function protoFields(buf: Buffer): ProtoField[] {
  const out: ProtoField[] = [];
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[i++] as number;
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 128;
    }
    throw new Error('protobuf: varint too long');
  };
  while (i < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) out.push({ no, varint: varint(), bytes: null });
    else if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error('protobuf: truncated field');
      out.push({ no, varint: null, bytes: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
    if (i > buf.length) throw new Error('protobuf: truncated field');
  }
  return out;
}

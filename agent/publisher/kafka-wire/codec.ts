/**
 * Kafka's primitive types (big-endian ints, int16-length strings, int32-length
 * bytes, zig-zag varints) for the non-flexible request and response versions
 * the agent's producer speaks (ADR 0040). The reader checks every length
 * against what is left of the frame: a short or inconsistent response is a
 * MalformedResponseError, never an out-of-bounds read or a huge allocation.
 */

export class MalformedResponseError extends Error {
  constructor(message: string) {
    super(`malformed kafka response: ${message}`);
    this.name = 'MalformedResponseError';
  }
}

export class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  get length(): number {
    return this.pos;
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf.writeInt8(v, this.pos);
    this.pos += 1;
    return this;
  }
  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }
  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }
  int64(v: bigint | number): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt(v), this.pos);
    this.pos += 8;
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** STRING / NULLABLE_STRING: int16 length (-1 for null), UTF-8. */
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = Buffer.from(s, 'utf8');
    return this.int16(b.length).raw(b);
  }
  /** BYTES: int32 length. */
  bytes(b: Uint8Array): this {
    return this.int32(b.length).raw(b);
  }
  /** ARRAY: int32 count, then each item. */
  array<T>(items: readonly T[], each: (w: this, item: T) => void): this {
    this.int32(items.length);
    for (const it of items) each(this, it);
    return this;
  }
  /** Zig-zag varint/varlong for |v| < 2^52 (plain arithmetic, no 32-bit overflow). */
  varint(v: number): this {
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    while (z >= 0x80) {
      this.int8(((z % 0x80) | 0x80) << 24 >> 24);
      z = Math.floor(z / 0x80);
    }
    return this.int8(z << 24 >> 24);
  }
  /** Overwrites 4 bytes at `at` (length and CRC back-patching). */
  patchInt32(at: number, v: number): void {
    this.buf.writeInt32BE(v, at);
  }
  patchUInt32(at: number, v: number): void {
    this.buf.writeUInt32BE(v, at);
  }
  reset(): void {
    this.pos = 0;
  }
  /** The bytes written so far (a view, valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new MalformedResponseError(`${what} needs ${n} bytes at offset ${this.pos}, frame has ${this.buf.length}`);
  }
  int8(): number {
    this.need(1, 'int8');
    return this.buf.readInt8(this.pos++);
  }
  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int64(): bigint {
    this.need(8, 'int64');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  nullableString(): string | null {
    const n = this.int16();
    if (n === -1) return null;
    if (n < 0) throw new MalformedResponseError(`string length ${n}`);
    this.need(n, 'string');
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  string(): string {
    const s = this.nullableString();
    if (s === null) throw new MalformedResponseError('null where a string is required');
    return s;
  }
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n === -1) return null;
    if (n < 0) throw new MalformedResponseError(`bytes length ${n}`);
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** ARRAY: the count is checked against the bytes left (each item takes ≥ `minItemBytes`) before reading any item. */
  array<T>(minItemBytes: number, each: (r: this) => T): T[] {
    const n = this.int32();
    if (n === -1) return [];
    if (n < 0 || n * minItemBytes > this.remaining) throw new MalformedResponseError(`array of ${n} items in ${this.remaining} bytes`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(each(this));
    return out;
  }
}

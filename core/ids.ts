import { randomBytes } from 'node:crypto';

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * Monotonic ULID generator: lexically sortable by time, unique per process
 * (the random part increments within one millisecond).
 */
export class UlidFactory {
  private lastTime = -1;
  private lastRandom: number[] = [];

  next(timeMs: number = Date.now()): string {
    if (timeMs <= this.lastTime) {
      this.increment();
      timeMs = this.lastTime;
    } else {
      this.lastTime = timeMs;
      const bytes = randomBytes(16);
      this.lastRandom = Array.from({ length: 16 }, (_, i) => (bytes[i] ?? 0) % 32);
    }
    return encodeTime(timeMs) + this.lastRandom.map((d) => ENCODING[d]).join('');
  }

  private increment(): void {
    for (let i = this.lastRandom.length - 1; i >= 0; i--) {
      const d = this.lastRandom[i] ?? 0;
      if (d < 31) {
        this.lastRandom[i] = d + 1;
        return;
      }
      this.lastRandom[i] = 0;
    }
  }
}

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = ENCODING[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

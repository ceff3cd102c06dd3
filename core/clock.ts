/**
 * Time is injected everywhere so that the same code runs live and in replay
 * (virtual time from event timestamps) and tests never sleep.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: tests and replay. Never goes backwards. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  set(ms: number): void {
    if (ms > this.t) this.t = ms;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/**
 * Verifying signed requests from PagerDuty and Slack (pure, no I/O).
 * Contracts, with their sources: test/receivers/CONTRACTS.md.
 *
 * PagerDuty v3 webhooks: `X-PagerDuty-Signature` holds one or more
 * comma-separated `v1=<hex HMAC-SHA256 of the raw body>` (several during a
 * secret rotation); the request is authentic when any one matches.
 * Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<raw body>">`
 * with `X-Slack-Request-Timestamp` (unix seconds) within 5 minutes.
 * Comparisons are constant-time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

function hmacHex(secret: string, data: Buffer | string): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** True when any `v1=` signature of the header matches the body under any configured secret. */
export function verifyPagerDuty(body: Buffer, header: string | undefined, secrets: readonly string[]): boolean {
  if (!header || header.length > 4096 || secrets.length === 0) return false;
  const sigs = header
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('v1='))
    .map((s) => s.slice(3));
  if (sigs.length === 0) return false;
  const expected = secrets.map((s) => hmacHex(s, body));
  let ok = false;
  // every comparison runs, so timing does not tell which one matched
  for (const sig of sigs) for (const e of expected) if (sameHex(sig, e)) ok = true;
  return ok;
}

export type SlackVerdict = 'ok' | 'bad_signature' | 'stale' | 'malformed';

/** Slack's scheme: the signature, then the timestamp within `maxAgeMs` of now (either direction). */
export function verifySlack(body: Buffer, headers: { signature?: string; timestamp?: string }, secret: string, nowMs: number, maxAgeMs = 5 * 60_000): SlackVerdict {
  const ts = headers.timestamp;
  if (!ts || !/^\d{1,12}$/.test(ts) || !headers.signature || headers.signature.length > 200) return 'malformed';
  const expected = `v0=${hmacHex(secret, Buffer.concat([Buffer.from(`v0:${ts}:`, 'utf8'), body]))}`;
  if (!sameHex(headers.signature, expected)) return 'bad_signature';
  if (Math.abs(nowMs - Number(ts) * 1000) > maxAgeMs) return 'stale';
  return 'ok';
}

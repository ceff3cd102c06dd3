/**
 * A Slack interactivity SENDER for tests: a `block_actions` payload for an
 * approval button, form-encoded and signed as Slack signs (CONTRACTS.md),
 * independently of the production verifier.
 */
import { createHmac } from 'node:crypto';

export function slackButtonRequest(o: { actionId: string; value: string; user: string; secret: string; timestampSec: number }): { body: string; headers: Record<string, string> } {
  const payload = {
    type: 'block_actions',
    user: { id: 'U0123ABC', username: o.user, name: o.user, team_id: 'T0001' },
    api_app_id: 'A0001',
    container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'C0001' },
    trigger_id: '1.2.3',
    channel: { id: 'C0001', name: 'gpu-oncall' },
    response_url: 'https://hooks.slack.com/actions/T0001/1/xyz',
    actions: [{ type: 'button', action_id: o.actionId, block_id: 'approval', value: o.value, action_ts: '1700000001.000200' }],
  };
  return slackSignedPayload(JSON.stringify(payload), o.secret, o.timestampSec);
}

/** Any `payload` text (even one that is not JSON), form-encoded and signed as Slack signs. */
export function slackSignedPayload(payloadText: string, secret: string, timestampSec: number): { body: string; headers: Record<string, string> } {
  const body = `payload=${encodeURIComponent(payloadText)}`;
  const sig = `v0=${createHmac('sha256', secret).update(`v0:${timestampSec}:${body}`).digest('hex')}`;
  return { body, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(timestampSec), 'x-slack-signature': sig } };
}

/**
 * Loads the published outside-service contracts from ../shared/contracts
 * (relative to the repo root) and compiles request validators with ajv.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { packageRoot } from '../../adapters/paths.js';

export function contractsDir(): string {
  return process.env.NODEWARDEN_CONTRACTS_DIR ?? join(packageRoot(), '..', 'shared', 'contracts');
}

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addFormat('url', (s: string) => {
    try {
      new URL(s);
      return true;
    } catch {
      return false;
    }
  });
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)));
  return ajv;
}

/** The request-body validator of POST /enqueue from the PagerDuty Events v2 OpenAPI document. */
export function pagerDutyRequestValidator(): ValidateFunction {
  const doc = JSON.parse(readFileSync(join(contractsDir(), 'pagerduty-events-v2.openapi.json'), 'utf8')) as Record<string, unknown>;
  const ajv = newAjv();
  ajv.addSchema({ ...doc, $id: 'pagerduty-events-v2' });
  return ajv.compile({ $ref: 'pagerduty-events-v2#/paths/~1enqueue/post/requestBody/content/application~1json/schema' });
}

/**
 * Slack incoming webhook payload as documented (contracts/README.md and Block
 * Kit limits): `text` and/or `blocks`; at most 50 blocks; section text ≤ 3000;
 * header plain_text ≤ 150; app webhooks cannot override channel, username or icon.
 */
export const SLACK_WEBHOOK_SCHEMA = {
  type: 'object',
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 40000 },
    blocks: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: {
        type: 'object',
        required: ['type'],
        properties: { type: { enum: ['section', 'header', 'context', 'divider', 'actions', 'image', 'rich_text'] } },
        allOf: [
          {
            if: { properties: { type: { const: 'header' } } },
            then: { required: ['text'], properties: { text: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'plain_text' }, text: { type: 'string', minLength: 1, maxLength: 150 } } } } },
          },
          {
            if: { properties: { type: { const: 'section' } } },
            then: { required: ['text'], properties: { text: { type: 'object', required: ['type', 'text'], properties: { type: { enum: ['plain_text', 'mrkdwn'] }, text: { type: 'string', minLength: 1, maxLength: 3000 } } } } },
          },
          {
            if: { properties: { type: { const: 'context' } } },
            then: {
              required: ['elements'],
              properties: { elements: { type: 'array', minItems: 1, maxItems: 10, items: { type: 'object', required: ['type', 'text'], properties: { type: { enum: ['plain_text', 'mrkdwn'] }, text: { type: 'string', minLength: 1, maxLength: 3000 } } } } },
            },
          },
        ],
      },
    },
  },
  anyOf: [{ required: ['text'] }, { required: ['blocks'] }],
  not: { anyOf: [{ required: ['channel'] }, { required: ['username'] }, { required: ['icon_emoji'] }, { required: ['icon_url'] }] },
} as const;

/** Block Kit `actions` block with buttons: action_id ≤ 255, value ≤ 2000, button text plain_text ≤ 75, ≤ 25 elements. */
const ACTIONS_BLOCK = {
  if: { properties: { type: { const: 'actions' } } },
  then: {
    required: ['elements'],
    properties: {
      elements: {
        type: 'array',
        minItems: 1,
        maxItems: 25,
        items: {
          type: 'object',
          required: ['type', 'action_id', 'text'],
          properties: {
            type: { const: 'button' },
            action_id: { type: 'string', minLength: 1, maxLength: 255 },
            value: { type: 'string', maxLength: 2000 },
            style: { enum: ['primary', 'danger'] },
            text: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'plain_text' }, text: { type: 'string', minLength: 1, maxLength: 75 } } },
          },
        },
      },
    },
  },
} as const;

const BLOCKS = { ...SLACK_WEBHOOK_SCHEMA.properties.blocks, items: { ...SLACK_WEBHOOK_SCHEMA.properties.blocks.items, allOf: [...SLACK_WEBHOOK_SCHEMA.properties.blocks.items.allOf, ACTIONS_BLOCK] } };

/**
 * Slack Web API bodies as JSON (docs.slack.dev, chat.postMessage / chat.update):
 * `channel` (chat.update: the channel ID), `ts` of the message to edit (chat.update),
 * `text` and/or `blocks`; `thread_ts` for a threaded reply. Unknown fields are not
 * rejected by Slack, but nodewarden sends only these.
 */
export function slackApiRequestValidator(method: 'chat.postMessage' | 'chat.update'): ValidateFunction {
  const props: Record<string, unknown> = {
    channel: { type: 'string', minLength: 1, maxLength: 80 },
    text: { type: 'string', minLength: 1, maxLength: 40000 },
    blocks: BLOCKS,
  };
  if (method === 'chat.update') props.ts = { type: 'string', pattern: '^\\d+\\.\\d+$' };
  else props.thread_ts = { type: 'string', pattern: '^\\d+\\.\\d+$' };
  return newAjv().compile({
    type: 'object',
    additionalProperties: false,
    properties: props,
    required: method === 'chat.update' ? ['channel', 'ts'] : ['channel'],
    anyOf: [{ required: ['text'] }, { required: ['blocks'] }],
  });
}

export function slackRequestValidator(): ValidateFunction {
  return newAjv().compile(SLACK_WEBHOOK_SCHEMA);
}

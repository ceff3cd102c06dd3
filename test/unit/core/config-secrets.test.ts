/** Secrets only from files or the environment: literal secrets in a config are rejected with a clear line. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../../adapters/config-file.js';
import { kafkaTransport, redisTransport } from '../../../adapters/transport-security.js';

describe('config: secrets only from files (mounted Secrets) or the environment', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-cfgsec-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const load = (yaml: string, env: NodeJS.ProcessEnv = {}): string => {
    try {
      loadConfig({ file: write('cfg.yaml', yaml), env });
      return 'accepted';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('rejects a literal secret in the config file, naming the file form', () => {
    const f = path.join(dir, 'cfg.yaml');
    expect(load('pager:\n  slack:\n    webhookUrl: https://hooks.slack.com/services/T/B/X\n')).to.equal(
      `${f}: /pager/slack/webhookUrl: secrets are never read from the config file: use webhookUrlFile (a mounted Secret) or webhookUrlEnv instead`,
    );
    expect(load('pager:\n  pagerduty:\n    routingKey: abc\n')).to.contain('/pager/pagerduty/routingKey: secrets are never read from the config file: use routingKeyFile');
    expect(load('redis:\n  password: hunter2\n')).to.contain('/redis/password: secrets are never read from the config file: use passwordFile');
    expect(load('kafka:\n  sasl:\n    mechanism: scram-sha-512\n    username: u\n    password: p\n')).to.contain('/kafka/sasl/password: secrets are never read');
    expect(load('control:\n  token: abcdefabcdefabcdef\n')).to.contain('/control/token: secrets are never read');
  });

  it('rejects credential-shaped URLs anywhere, from the file or the environment', () => {
    expect(load('redis:\n  url: redis://:hunter2@redis:6379\n')).to.contain('/redis/url: a URL must not carry a password');
    expect(load('', { NODEWARDEN_REDIS_URL: 'rediss://nodewarden:hunter2@redis:6380' })).to.contain('/redis/url: a URL must not carry a password');
    expect(load('pager:\n  pagerduty:\n    url: https://hooks.slack.com/services/T/B/X\n    routingKeyFile: /x\n    routingKeyEnv: E\n')).to.contain('a Slack webhook URL is a credential');
    expect(load('pager:\n  slackApi:\n    channel: xoxb-1234-5678-abcdef\n')).to.contain('a Slack token is a credential');
    expect(load('pager:\n  slackApi:\n    channel: C0123ABCD\n    tokenFile: /etc/nodewarden/secrets/slack-bot-token\n')).to.equal('accepted');
    // A user name alone is not a secret (Redis ACL user).
    expect(load('redis:\n  url: rediss://nodewarden@redis:6380\n')).to.equal('accepted');
  });

  it('needs TLS for a CA file', () => {
    expect(load('kafka:\n  caFile: /ca.crt\n')).to.contain('/kafka/caFile: needs kafka.ssl: true');
    expect(load('redis:\n  caFile: /ca.crt\n')).to.contain('/redis/caFile: needs a rediss:// url (TLS)');
  });

  it('reads credentials and CAs from files; a missing or empty file is one clear line', () => {
    const cfg = loadConfig({
      file: write('ok.yaml', `kafka:\n  ssl: true\n  caFile: ${write('ca.crt', 'PEM\n')}\n  sasl:\n    mechanism: scram-sha-512\n    usernameFile: ${write('u', 'agent\n')}\n    passwordFile: ${write('p', 's3cret-pw\n')}\nredis:\n  url: rediss://nodewarden@redis:6380/0\n  passwordFile: ${write('rp', 'redis-pw\n')}\n  caFile: ${path.join(dir, 'ca.crt')}\n`),
      env: {},
    });
    expect(kafkaTransport(cfg.kafka)).to.deep.equal({ ssl: { ca: ['PEM'], rejectUnauthorized: true }, sasl: { mechanism: 'scram-sha-512', username: 'agent', password: 's3cret-pw' } });
    expect(redisTransport(cfg.redis, {})).to.deep.equal({ url: 'rediss://redis:6380/0', options: { username: 'nodewarden', password: 'redis-pw', tls: { ca: ['PEM'], rejectUnauthorized: true } } });
    expect(redisTransport({ ...cfg.redis, passwordFile: null }, { NODEWARDEN_REDIS_PASSWORD: 'from-env' }).options.password).to.equal('from-env');
    fs.writeFileSync(path.join(dir, 'p'), '\n');
    expect(() => kafkaTransport(cfg.kafka)).to.throw(`kafka.sasl.passwordFile: /: ${path.join(dir, 'p')} is empty`);
    expect(() => kafkaTransport({ ...cfg.kafka, caFile: path.join(dir, 'nope') })).to.throw(`kafka.caFile: /: cannot read ${path.join(dir, 'nope')}: ENOENT`);
  });
});

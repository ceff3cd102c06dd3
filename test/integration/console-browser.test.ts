/**
 * The operator's console in a real browser: Debian's Chromium, headless,
 * driven by playwright-core (no browser download; scripts/provision/chromium.sh
 * installs it). Against the real demo CLI: the page's URL is printed first,
 * the storm's cordons and denials show on the fleet strip within the first
 * minute, an admin pause from the page stops actions and lands in the ledger.
 * Against an in-process engine HTTP server over the demo system: a read-only
 * token sees no buttons, a wrong token gets the login again. No token ever
 * appears in a URL or the page. Screenshots: console-*.png in a temporary
 * directory, or in docs/img with NODEWARDEN_CONSOLE_SHOTS=docs/img.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { loadConfig } from '../../adapters/config-file.js';
import { createLogger } from '../../adapters/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import { defaultRulesPath, loadRules } from '../../rules/language/load.js';
import { createDemoSystem, defaultStoryline } from '../../demo/system.js';
import type { DemoSystem } from '../../demo/system.js';
import type { EngineHttpServer } from '../../control/server.js';
import { startControlServer } from '../harness/control-server.js';

const CHROMIUM = process.env.NODEWARDEN_CHROMIUM ?? '/usr/bin/chromium';
/** Where screenshots go: a temporary directory, or docs/img to refresh the documentation's (NODEWARDEN_CONSOLE_SHOTS=docs/img). */
const SHOTS = process.env.NODEWARDEN_CONSOLE_SHOTS ?? join(tmpdir(), 'nodewarden-console-shots');
const ADMIN = 'console-admin-token-0123456789abcdef';
const READER = 'console-reader-token-0123456789abcdef';

/** Chromium on a fresh profile directory; each test opens its own tab (sessionStorage is per tab). */
async function launch(profile: string): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: run scripts/provision/chromium.sh (apt package "chromium") or set NODEWARDEN_CHROMIUM`);
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page that fails the test on any console error (a CSP violation is one). */
async function newPage(ctx: BrowserContext, errors: string[]): Promise<Page> {
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return page;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.locator('#token').fill(token);
  await page.locator('#login-form button[type=submit]').click();
}

/** A new tab on the console, signed in, with its first data rendered. */
async function openSignedIn(browser: BrowserContext, base: string, token: string, errors: string[]): Promise<Page> {
  const page = await newPage(browser, errors);
  await page.goto(`${base}/`);
  await signIn(page, token);
  await page.locator('body[data-loaded=true]').waitFor();
  return page;
}

/** Nothing secret in the address bar or the document. */
async function expectNoTokenInPage(page: Page, token: string): Promise<void> {
  expect(page.url()).to.not.include(token);
  const html = await page.content();
  expect(html.includes(token), 'token in the page').to.equal(false);
}

describe('operator console in a real browser (Chromium + playwright-core)', function () {
  this.timeout(240_000);
  let browser: BrowserContext;
  let profile: string;

  before(async () => {
    profile = mkdtempSync(join(tmpdir(), 'nw-chromium-'));
    browser = await launch(profile);
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  describe('the demo (real CLI)', () => {
    let child: ChildProcess | undefined;
    let out = '';
    let err = '';
    let base = '';
    let token = '';
    let startedAt = 0;

    before(async () => {
      startedAt = Date.now();
      child = spawn('./bin/nodewarden', ['demo', '--no-tui', '--port', '0', '--seed', '7', '--duration', '150s'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      await new Promise<void>((resolve, reject) => {
        child?.stdout?.on('data', (b: Buffer) => {
          out += b.toString();
          const url = /^nodewarden console: (http:\/\/127\.0\.0\.1:\d+)\/ /.exec(out);
          const tok = /token \(admin, this run only\): (\S+)\s/.exec(out);
          if (url?.[1] && tok?.[1] && !base) {
            base = url[1];
            token = tok[1];
            resolve();
          }
        });
        child?.once('exit', () => reject(new Error(`demo exited before printing its console URL and token:\n${out}\n${err}`)));
      });
    });
    after(() => {
      if (child && child.exitCode === null) child.kill('SIGINT');
    });

    it('prints the console URL first, serves it with a strict CSP and no inline script', async () => {
      expect(out.split('\n')[0]).to.match(/^nodewarden console: http:\/\/127\.0\.0\.1:\d+\/ /);
      const res = await fetch(`${base}/`);
      expect(res.status).to.equal(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).to.include("script-src 'self'").and.include("default-src 'none'").and.include("frame-ancestors 'none'");
      expect(csp).to.not.include('unsafe-inline');
      const html = await res.text();
      expect(html).to.not.match(/<script(?![^>]*\bsrc=)[^>]*>/i);
      expect(html).to.not.match(/\son[a-z]+=/i);
    });

    it('shows the storm: cordons by nodewarden and guard denials on the fleet strip within the first minute', async () => {
      const errors: string[] = [];
      const page = await newPage(browser, errors);
      const t0 = Date.now();
      await page.goto(`${base}/`);
      await page.locator('#token').waitFor({ state: 'visible' });
      const loginMs = Date.now() - t0;
      const fcp = Number(await page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"));
      const t1 = Date.now();
      await signIn(page, token);
      await page.locator('body[data-loaded=true]').waitFor();
      const firstDataMs = Date.now() - t1;
      const assets = await Promise.all(['/', '/console/app.js', '/console/app.css'].map(async (p) => (await (await fetch(`${base}${p}`)).arrayBuffer()).byteLength));
      console.log(`      console: ${assets.reduce((a, b) => a + b, 0)} bytes (${assets.join(' + ')}), first contentful paint ${Math.round(fcp)} ms, login form ready ${loginMs} ms after goto, first data render ${firstDataMs} ms after sign-in`);
      expect(await page.locator('#strip .cell').count(), 'one cell per simulated node').to.equal(200);
      // within the first minute of the demo's wall time
      // (polled through locators: the page's CSP rightly forbids the string eval waitForFunction would use)
      const count = (sel: string): Promise<number> => page.locator(sel).count();
      while ((await count('#strip .cell.s-cordoned-by-nodewarden')) === 0 || (await count('#strip .cell.s-denied')) === 0) {
        if (Date.now() > startedAt + 60_000) throw new Error('no cordoned and denied nodes on the fleet strip within the first minute of the demo');
        await page.waitForTimeout(500);
      }
      console.log(`      storm visible ${Math.round((Date.now() - startedAt) / 1000)} s after the demo started`);
      const cordoned = await page.locator('#strip .cell.s-cordoned-by-nodewarden').count();
      const denied = await page.locator('#strip .cell.s-denied').count();
      expect(cordoned).to.be.greaterThan(0).and.at.most(10);
      expect(denied).to.be.greaterThan(0);
      const title = await page.locator('#strip .cell.s-denied').first().getAttribute('title');
      expect(title).to.match(/denied by the guard\. last decision: denied cordon by rule \S+ \(guard: maxUnavailable/);
      // the storm's incident, from GET /api/v1/incidents, lists its member nodes (a map keyed by node in the API)
      expect(await page.locator('#incidents-source').textContent()).to.equal('from GET /api/v1/incidents');
      const members = page.locator('#incident-list li.incident details summary', { hasText: /^\d+ members$/ });
      for (let i = 0; (await members.count()) === 0; i++) {
        if (i > 30) throw new Error(`no incident with several members in the panel: ${await page.locator('#incident-list').textContent()}`);
        await page.waitForTimeout(500);
      }
      expect(Number((await members.first().textContent())?.split(' ')[0])).to.be.greaterThan(1);
      expect(await page.locator('#incident-list li.incident ul.members li').first().textContent({ timeout: 5000 })).to.match(/^\S+ \((firing|cleared)\)/);
      // keyboard: focusing a cell tells its last decision in the live region
      await page.locator('#strip .cell.s-cordoned-by-nodewarden').first().focus();
      // its last decision is the cordon, or a later step of the repair ladder (on in the demo) on the same node
    expect(await page.locator('#node-detail').textContent()).to.match(/cordoned by nodewarden\. last decision: executed (cordon|reset|reboot|validate) /);
      await page.waitForTimeout(1500);
      await page.screenshot({ path: join(SHOTS, 'console-storm.png'), fullPage: true });
      await expectNoTokenInPage(page, token);
      expect(await page.evaluate('sessionStorage.length')).to.equal(1);
      expect(errors, errors.join('\n')).to.deep.equal([]);
      await page.close();
    });

    it('an admin pause from the page stops actions and shows up in the ledger', async () => {
      const errors: string[] = [];
      const page = await openSignedIn(browser, base, token, errors);
      expect(await page.locator('#resume').isVisible()).to.equal(false);
      await page.locator('#pause-reason').fill('console test: stop everything');
      await page.locator('#pause-form button[type=submit]').click();
      await page.locator('.flag-paused').waitFor();
      expect(await page.locator('.flag-paused').textContent()).to.include('demo-admin').and.include('console test: stop everything');
      await page.locator('#resume').waitFor({ state: 'visible' });
      // the audit record in the page's live ledger table
      await page.locator('#ledger-rows tr.audit', { hasText: 'guard-pause' }).first().waitFor();
      const pausedAt = Date.now();
      // virtual hours pass: actions keep being decided, the guard denies them all (guard "paused"), none is executed
      const headers = { authorization: `Bearer ${token}` };
      let after: Array<Record<string, unknown>> = [];
      let audit: Record<string, unknown> | undefined;
      for (let i = 0; i < 40; i++) {
        await page.waitForTimeout(1000);
        const ledger = (await (await fetch(`${base}/api/v1/ledger?limit=1000`, { headers })).json()) as { records: Array<Record<string, unknown>> };
        const idx = ledger.records.findIndex((r) => r.kind === 'guard-pause');
        audit = ledger.records[idx];
        after = idx >= 0 ? ledger.records.slice(0, idx) : [];
        if (after.some((r) => r.outcome === 'denied' && r.guard === 'paused')) break;
      }
      expect(audit, 'guard-pause audit in the ledger').to.include({ by: 'demo-admin', reason: 'console test: stop everything' });
      const acted = after.filter((r) => ['cordon', 'uncordon', 'rollback'].includes(String(r.action)) && r.outcome === 'executed');
      expect(acted, JSON.stringify(acted.slice(0, 3))).to.deep.equal([]);
      expect(after.some((r) => r.outcome === 'denied' && r.guard === 'paused'), `actions denied by the pause; after the pause: ${JSON.stringify(after.slice(0, 5))}`).to.equal(true);
      await page.locator('#f-outcome').selectOption('denied');
      // the table shows the filtered query from its next refresh on (every 1.5 s; a loaded machine can take longer)
      let outcomes: string[] = [];
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await page.waitForTimeout(500)) {
        outcomes = await page.locator('#ledger-rows td.outcome').allTextContents();
        if (outcomes.length > 0 && outcomes.every((o) => o.includes('denied'))) break;
      }
      expect(outcomes.length).to.be.greaterThan(0);
      expect(outcomes.filter((o) => !o.includes('denied')), 'rows left after filtering the ledger to denied').to.deep.equal([]);
      await page.screenshot({ path: join(SHOTS, 'console-paused.png'), fullPage: true });
      // resume from the page, through the keyboard
      await page.locator('#resume').focus();
      await page.keyboard.press('Enter');
      await page.locator('.flag-running').waitFor();
      expect(Date.now() - pausedAt).to.be.lessThan(90_000);
      await expectNoTokenInPage(page, token);
      expect(errors, errors.join('\n')).to.deep.equal([]);
      await page.close();
      expect(out + err, 'the token printed once, on its own line, never in a URL').to.not.match(new RegExp(`https?://\\S*${token}`));
      // the demo prints its admin token in its header only: the token line and the ctl example
      const tokenLines = out.split('\n').filter((l) => l.includes(token)).map((l) => l.trim().split(':')[0]);
      expect(tokenLines, 'stdout lines that carry the token').to.deep.equal(['control API token (admin, this run only)', 'try']);
      expect(err.includes(token), 'the token in the demo\'s log (stderr)').to.equal(false);
    });
  });

  describe('roles and sign-in (in-process engine HTTP server over the demo system)', () => {
    let system: DemoSystem;
    let http: EngineHttpServer;
    let base = '';
    /** The engine HTTP server's own log (JSON lines at debug level): it must never carry a token. */
    let serverLog = '';

    before(async () => {
      const config = loadConfig({ env: {} });
      const start = Date.parse('2026-01-05T10:00:00Z');
      system = createDemoSystem({
        config,
        rules: loadRules(defaultRulesPath()),
        seed: 7,
        amplification: 400,
        start,
        storyline: defaultStoryline(60),
        registry: createRegistry('engine'),
        logger: createLogger({ component: 'console-test', level: 'silent' }),
      });
      await system.advance(start + 40 * 60_000);
      const logStream = new PassThrough();
      logStream.on('data', (b: Buffer) => (serverLog += b.toString()));
      const serverLogger = createLogger({ component: 'console-test', level: 'debug', destination: logStream });
      ({ server: http, base } = await startControlServer(system.control, `${ADMIN} admin alice\n${READER} read-only viewer\n`, system.clock, serverLogger));
    });
    after(async () => {
      await http?.close();
      await system?.close();
    });

    it('a read-only token sees everything and no button that changes anything', async () => {
      const errors: string[] = [];
      const page = await openSignedIn(browser, base, READER, errors);
      expect(await page.locator('#who').textContent()).to.include('viewer (read-only)');
      expect(await page.locator('#rule-rows tr').count()).to.be.greaterThan(0);
      expect(await page.locator('#strip .cell.s-cordoned-by-nodewarden').count()).to.be.greaterThan(0);
      // the only buttons a reader can press: sign out and the node cells (which only show details)
      const visible = (await page.locator('button:not(.cell):visible').allTextContents()).map((t) => t.trim());
      expect(visible).to.deep.equal(['Sign out']);
      expect(await page.locator('#pause-form').isVisible()).to.equal(false);
      await page.screenshot({ path: join(SHOTS, 'console-readonly.png'), fullPage: false });
      // the same page for an admin has the buttons
      await page.locator('#logout').click();
      await signIn(page, ADMIN);
      await page.locator('body[data-loaded=true]').waitFor();
      await page.locator('#pause-form').waitFor({ state: 'visible' });
      expect(await page.locator('#rule-rows button:visible').count()).to.be.greaterThan(0);
      // disable a rule with reason and TTL from the page: the ctl call, audited
      await page.locator('#rule-rows button:visible').first().click();
      await page.locator('#toggle-reason').fill('noisy during the console test');
      await page.locator('#toggle-ttl').fill('2h');
      await page.locator('#toggle-ok').click();
      await page.locator('#rule-rows .pill-off').first().waitFor();
      await page.locator('#ledger-rows tr.audit', { hasText: 'noisy during the console test' }).first().waitFor();
      expect(await page.locator('#rule-rows .toggle-note').first().textContent()).to.match(/disabled by alice: noisy during the console test — until \d{4}-/);
      await expectNoTokenInPage(page, ADMIN);
      expect(errors, errors.join('\n')).to.deep.equal([]);
      await page.close();
    });

    it('a wrong token gets the login again, and so does a stored token that stops working', async () => {
      const page = await browser.newPage();
      await page.goto(`${base}/`);
      await signIn(page, 'wrong-token-0123456789abcdef');
      await page.locator('#login-error').filter({ hasText: 'not accepted' }).waitFor();
      expect(await page.locator('#main').isVisible()).to.equal(false);
      expect(await page.locator('#token').isVisible()).to.equal(true);
      expect(await page.evaluate('sessionStorage.length')).to.equal(0);
      expect(page.url()).to.equal(`${base}/`);
      // a session whose stored token is no longer valid (rotated tokens file): back to the login
      await page.evaluate("sessionStorage.setItem('nodewarden.console.token', 'rotated-token-0123456789abcdef')");
      await page.reload();
      await page.locator('#login-error').filter({ hasText: 'not accepted' }).waitFor();
      expect(await page.locator('#main').isVisible()).to.equal(false);
      await page.screenshot({ path: join(SHOTS, 'console-login.png') });
      await page.close();
    });

    it('the server logs who called what, never a token (good, read-only, wrong or rotated)', () => {
      // the suite above signed in as the reader and as alice, and tried two refused tokens
      expect(serverLog).to.match(/"by":"viewer".*"control api call"/);
      expect(serverLog).to.match(/"by":"alice".*"control api call"/);
      for (const secret of [ADMIN, READER, 'wrong-token-0123456789abcdef', 'rotated-token-0123456789abcdef']) {
        expect(serverLog.includes(secret), 'a token in the engine log').to.equal(false);
      }
    });
  });
});

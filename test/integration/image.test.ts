/**
 * The built image, without Kubernetes: the OCI archive made by
 * scripts/provision/image.sh (NODEWARDEN_IMAGE_ARCHIVE) is unpacked layer by
 * layer and run with runc as the image's own default user, with a read-only
 * root filesystem, in its own network namespace (loopback only, down), as a
 * pod with readOnlyRootFilesystem would run it. Fails loudly when the archive
 * or runc is missing; nothing is skipped.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { resolveBinary } from '../harness/proc.js';
import { ROOT } from './engine-support.js';

const execFileP = promisify(execFile);

const HOSTROOT_FIXTURE = path.join(ROOT, 'test', 'fixtures', 'hostroots', 'h100-xid79');

interface ImageConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
}

interface Descriptor {
  mediaType: string;
  digest: string;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Replace the image's entrypoint (default: the image's). */
  entrypoint?: string[];
  /** Read-only bind mounts, host path → container path. */
  mounts?: Array<[string, string]>;
}

function blobPath(layout: string, digest: string): string {
  const [algo, hex] = digest.split(':');
  if (!algo || !hex) throw new Error(`bad digest ${digest}`);
  return path.join(layout, 'blobs', algo, hex);
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** Apply one layer tarball onto rootfs, honouring OCI whiteouts. */
async function applyLayer(rootfs: string, blob: string): Promise<void> {
  const { stdout } = await execFileP('tar', ['-tf', blob], { maxBuffer: 256 * 1024 * 1024 });
  for (const entry of stdout.split('\n')) {
    const name = path.posix.basename(entry);
    if (!name.startsWith('.wh.')) continue;
    const dir = path.join(rootfs, path.posix.dirname(entry));
    if (name === '.wh..wh..opq') {
      for (const child of fs.existsSync(dir) ? fs.readdirSync(dir) : []) fs.rmSync(path.join(dir, child), { recursive: true, force: true });
    } else {
      fs.rmSync(path.join(dir, name.slice('.wh.'.length)), { recursive: true, force: true });
    }
  }
  await execFileP('tar', ['--numeric-owner', '-xpf', blob, '-C', rootfs, '--exclude=.wh.*', '--exclude=*/.wh.*']);
}

function parseUser(user: string | undefined): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  if (!m?.[1]) throw new Error(`image user must be numeric uid[:gid], got ${JSON.stringify(user)}`);
  const uid = Number(m[1]);
  return { uid, gid: m[2] ? Number(m[2]) : uid };
}

describe('image: the OCI archive run with runc (read-only root, non-root)', function () {
  this.timeout(180_000);
  let work = '';
  let rootfs = '';
  let runc = '';
  let config: ImageConfig = {};
  let runs = 0;

  before(async function () {
    const archive = process.env['NODEWARDEN_IMAGE_ARCHIVE'];
    if (!archive) throw new Error('NODEWARDEN_IMAGE_ARCHIVE is not set: build the image with `bash scripts/provision/image.sh` (its last line is the archive)');
    if (!fs.existsSync(archive)) throw new Error(`NODEWARDEN_IMAGE_ARCHIVE=${archive} does not exist: run scripts/provision/image.sh`);
    if (process.getuid?.() !== 0) throw new Error('the image test runs runc and needs root');
    runc = resolveBinary('NODEWARDEN_RUNC', 'runc', 'Install it with scripts/provision/image.sh (Debian package runc).');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nodewarden-image-'));
    const layout = path.join(work, 'layout');
    rootfs = path.join(work, 'rootfs');
    fs.mkdirSync(layout);
    fs.mkdirSync(rootfs);
    const t0 = Date.now();
    await execFileP('tar', ['-xf', archive, '-C', layout]);
    const index = readJson<{ manifests: Descriptor[] }>(path.join(layout, 'index.json'));
    expect(index.manifests, 'one image in the archive').to.have.length(1);
    const manifest = readJson<{ config: Descriptor; layers: Descriptor[] }>(blobPath(layout, index.manifests[0]!.digest));
    config = readJson<{ config: ImageConfig }>(blobPath(layout, manifest.config.digest)).config;
    for (const layer of manifest.layers) await applyLayer(rootfs, blobPath(layout, layer.digest));
    fs.rmSync(layout, { recursive: true, force: true });
    console.log(`      unpacked ${manifest.layers.length} layers in ${Date.now() - t0} ms`);
  });

  after(function () {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Run the image once with runc: its user, env and workdir, a read-only root, no network. */
  async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const id = `nodewarden-image-${process.pid}-${++runs}`;
    const bundle = path.join(work, id);
    fs.mkdirSync(bundle);
    const { uid, gid } = parseUser(config.User);
    const spec = {
      ociVersion: '1.0.2',
      process: {
        terminal: false,
        user: { uid, gid },
        args: [...(opts.entrypoint ?? config.Entrypoint ?? []), ...args],
        env: config.Env ?? [],
        cwd: config.WorkingDir || '/',
        // no capabilities at all (the engine's pod drops ALL); oomScoreAdj unset
        capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
        rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
        noNewPrivileges: true,
      },
      root: { path: rootfs, readonly: true },
      hostname: 'nodewarden-image-test',
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
        { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
        { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
        { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
        ...(opts.mounts ?? []).map(([source, destination]) => ({ destination, type: 'bind', source, options: ['rbind', 'ro'] })),
      ],
      linux: {
        namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
        maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
        readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      },
    };
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
    try {
      const { stdout, stderr } = await execFileP(runc, ['--root', path.join(work, 'runc-state'), 'run', '--bundle', bundle, id], {
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: unknown; stdout?: string; stderr?: string };
      if (typeof e.code !== 'number') throw err;
      return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    } finally {
      await execFileP(runc, ['--root', path.join(work, 'runc-state'), 'delete', '--force', id]).catch(() => undefined);
    }
  }

  it('is configured as the chart expects: non-root 65532 by default, entrypoint node /app/bin/nodewarden, production env', function () {
    expect(config.User).to.equal('65532:65532');
    expect(config.Entrypoint).to.deep.equal(['node', '/app/bin/nodewarden']);
    expect(config.Env ?? []).to.include('NODE_ENV=production');
    expect(config.WorkingDir).to.equal('/app');
  });

  it('is lean: production dependencies only, no tests, TypeScript sources, type declarations or source maps under /app', function () {
    const app = path.join(rootfs, 'app');
    for (const dev of ['typescript', 'mocha', 'eslint', 'chai', 'madge', 'fast-check', 'json-rules-engine', '@types/mocha']) {
      expect(fs.existsSync(path.join(app, 'node_modules', dev)), `node_modules/${dev}`).to.equal(false);
    }
    const pkg = readJson<{ dependencies: Record<string, string> }>(path.join(app, 'package.json'));
    for (const dep of Object.keys(pkg.dependencies)) {
      expect(fs.existsSync(path.join(app, 'node_modules', dep, 'package.json')), `node_modules/${dep}`).to.equal(true);
    }
    for (const absent of ['test', 'bench', 'docs', 'deploy', 'scripts', 'dist/test', 'dist/bench', 'dist/.tsbuildinfo']) {
      expect(fs.existsSync(path.join(app, absent)), absent).to.equal(false);
    }
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|mts|cts|map)$/.test(e.name)) offenders.push(path.relative(app, p));
      }
    };
    walk(app);
    expect(offenders.slice(0, 10)).to.deep.equal([]);
  });

  it('ships every runtime data file of the source folders (rule pack, Lua scripts, protos, console assets)', function () {
    const folders = fs
      .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1))
      .filter((f) => f !== 'bin' && fs.statSync(path.join(ROOT, f)).isDirectory());
    expect(folders).to.include.members(['core', 'rules', 'control']);
    const data: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
        const rel = path.join(dir, e.name);
        if (e.isDirectory()) walk(rel);
        else if (!e.name.endsWith('.ts')) data.push(rel);
      }
    };
    for (const f of folders) walk(f);
    expect(data).to.include.members(['rules/pack/gpu-xid.yaml', 'control/console/index.html']);
    expect(data.filter((f) => !fs.existsSync(path.join(rootfs, 'app', f)))).to.deep.equal([]);
  });

  it('every production dependency and every CLI command module loads from the stripped node_modules', async function () {
    const script = [
      "import fs from 'node:fs';",
      "const pkg = JSON.parse(fs.readFileSync('/app/package.json', 'utf8'));",
      'const failed = [];',
      'for (const dep of Object.keys(pkg.dependencies)) { try { await import(dep); } catch (e) { failed.push(`${dep}: ${e.message}`); } }',
      "for (const f of fs.readdirSync('/app/dist/cli/commands')) {",
      "  if (f.endsWith('.js')) { try { await import(`/app/dist/cli/commands/${f}`); } catch (e) { failed.push(`${f}: ${e.message}`); } }",
      '}',
      'console.log(JSON.stringify(failed));',
    ].join('\n');
    const res = await run(['--input-type=module', '-e', script], { entrypoint: ['node'] });
    expect(res.code, res.stderr).to.equal(0);
    expect(JSON.parse(res.stdout)).to.deep.equal([]);
  });

  it('nodewarden --help, both roles\' --help and `rules check /app/rules/pack` succeed as 65532 on the read-only root', async function () {
    const help = await run(['--help']);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.match(/^usage: nodewarden <command>/);
    expect(help.stdout).to.match(/\bagent\b/).and.to.match(/\bengine\b/);
    for (const role of ['agent', 'engine']) {
      const roleHelp = await run([role, '--help']);
      expect(roleHelp.code, roleHelp.stderr).to.equal(0);
      expect(roleHelp.stdout).to.match(new RegExp(`^usage: nodewarden ${role}\\b`));
    }

    const check = await run(['rules', 'check', '/app/rules/pack']);
    expect(check.code, check.stderr).to.equal(0);
    expect(check.stdout).to.match(/^OK +\/app\/rules\/pack\/gpu-xid\.yaml/m);
    const lines = check.stdout.split('\n').filter((l) => l.trim() !== '');
    // One OK line per YAML file the repository's pack holds (rule files and the Xid catalogue).
    const packFiles = fs.readdirSync(path.join(ROOT, 'rules', 'pack')).filter((f) => /\.ya?ml$/.test(f));
    expect(packFiles.length).to.be.greaterThan(3);
    expect(lines).to.have.length(packFiles.length);
    for (const l of lines) expect(l).to.match(/^OK /);
  });

  it('agent --once over a read-only host root prints envelope JSONL (the Xid 79 of hostroots/h100-xid79)', async function () {
    const res = await run(['agent', '--once', '--host-root', '/host', '--node', 'gpu-node-7'], { mounts: [[HOSTROOT_FIXTURE, '/host']] });
    expect(res.code, res.stderr).to.equal(0);
    const events = res.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { v: number; node: string; type: string; source: string; data: Record<string, unknown> });
    expect(events.length).to.be.greaterThan(0);
    for (const e of events) {
      expect(e.v).to.equal(1);
      expect(e.node).to.equal('gpu-node-7');
    }
    const xids = events.filter((e) => e.type === 'gpu.xid');
    expect(xids.map((e) => e.data['code'])).to.deep.equal([79]);
    expect(events.map((e) => e.type)).to.include('agent.heartbeat');
  });

  it('runs as uid/gid 65532 and cannot write to the root filesystem (/app, /tmp, /)', async function () {
    const script = [
      "const fs = require('node:fs');",
      'const out = { uid: process.getuid(), gid: process.getgid(), writes: {} };',
      "for (const f of ['/app/x', '/app/node_modules/x', '/tmp/x', '/x']) {",
      "  try { fs.writeFileSync(f, 'x'); out.writes[f] = 'ok'; } catch (e) { out.writes[f] = e.code; }",
      '}',
      'console.log(JSON.stringify(out));',
    ].join('\n');
    const res = await run(['-e', script], { entrypoint: ['node'] });
    expect(res.code, res.stderr).to.equal(0);
    const out = JSON.parse(res.stdout) as { uid: number; gid: number; writes: Record<string, string> };
    expect(out.uid).to.equal(65532);
    expect(out.gid).to.equal(65532);
    expect(out.writes).to.deep.equal({ '/app/x': 'EROFS', '/app/node_modules/x': 'EROFS', '/tmp/x': 'EROFS', '/x': 'EROFS' });
  });
});

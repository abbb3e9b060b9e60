/**
 * The package as a user installs it: built and packed (`npm pack`) from a copy of this checkout,
 * the tarball installed into a fresh project with no tsx, then there:
 * - a plain `.mjs` talks to an emulator started with the installed `mcumgr serve` (echo, image
 *   list, image upload);
 * - a TypeScript consumer compiles with `tsc --strict --module nodenext` (library checks on) with
 *   zero errors, and a wrong request field is a type error (an `@ts-expect-error` that must hold);
 * - esbuild bundles the browser entry with no Node built-in.
 *
 * The install is offline: the project's lockfile is derived from this checkout's (the runtime
 * dependencies' resolved tarballs and integrity), so `npm ci --offline` takes them from the cache
 * that this checkout's `npm ci` filled.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, readdir, rename, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { ROOT, tempDir } from './helpers.ts';

const run = promisify(execFile);

/** The environment of a user's shell: no loader hooks (tsx) inherited from the test runner. */
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  return env;
};

interface LockPackage {
  dev?: boolean;
  [key: string]: unknown;
}

let tmp: Awaited<ReturnType<typeof tempDir>>;
let app: string;

before(async () => {
  tmp = await tempDir('mcumgr-package-');
  // Build and pack a copy, so that the checkout's dist/ (which other tests' CLI processes run) is never rebuilt under them.
  const copy = join(tmp.path, 'source');
  await mkdir(copy);
  for (const entry of ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json', 'bin', 'src', 'scripts']) {
    await cp(join(ROOT, entry), join(copy, entry), { recursive: true });
  }
  await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  await run(process.execPath, [join(copy, 'scripts', 'build.mjs')], { cwd: copy, env: cleanEnv() });
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp.path], { cwd: copy, env: cleanEnv() });
  const tarball = join(tmp.path, stdout.trim().split('\n').pop()!);

  app = join(tmp.path, 'app');
  await mkdir(app);
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const spec = `file:${tarball}`;
  const integrity = `sha512-${createHash('sha512').update(await readFile(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { mcumgr: spec } },
    'node_modules/mcumgr': { version: pkg['version'], resolved: spec, integrity, license: pkg['license'], dependencies: pkg['dependencies'], optionalDependencies: pkg['optionalDependencies'], bin: pkg['bin'], engines: pkg['engines'] },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path.startsWith('node_modules/') && !entry.dev) packages[path] = entry;
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { mcumgr: spec } }));
  await writeFile(join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }));
  await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, env: cleanEnv() });
});

after(async () => {
  await tmp?.remove();
});

/** The first ```ts block of the README's `## Library` section. */
function readmeLibraryExample(readme: string): string {
  const section = readme.slice(readme.indexOf('\n## Library\n'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(section.length < readme.length && m, 'the README has a Library section with a ts example');
  return m[1]!;
}

/** `mcumgr serve` from the installed package (node_modules/.bin) on a free loopback UDP port. */
async function startInstalledServe(dataName: string): Promise<{ port: number; stop(): void }> {
  const serve = spawn(join(app, 'node_modules', '.bin', 'mcumgr'), ['serve', '--udp', '127.0.0.1:0', '--data', join(tmp.path, dataName)], { cwd: app, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  try {
    const port = await new Promise<number>((resolve, reject) => {
      serve.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on udp 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      serve.stderr.on('data', (d: Buffer) => (out += d.toString()));
      serve.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    });
    return { port, stop: () => void serve.kill('SIGTERM') };
  } catch (e) {
    serve.kill('SIGKILL');
    throw e;
  }
}

describe('package: the packed tarball installed into a fresh project', { timeout: 240_000 }, () => {
  it('installs what runs and nothing of development (no tsx, no TypeScript sources)', async () => {
    const installed = join(app, 'node_modules');
    for (const dev of ['tsx', 'typescript', 'cbor2', '@types', 'esbuild']) assert.ok(!existsSync(join(installed, dev)), `${dev} is installed`);
    const files = await readdir(join(installed, 'mcumgr'));
    assert.deepEqual(files.sort(), ['README.md', 'bin', 'dist', 'package.json']);
    assert.ok(existsSync(join(installed, 'mcumgr', 'dist', 'index.d.ts')));
    assert.ok(existsSync(join(installed, 'mcumgr', 'dist', 'index.js.map')));
    // No global type augmentation reaches a consumer (it once declared DataView.getFloat16).
    const declarations = (await readdir(join(installed, 'mcumgr', 'dist'), { recursive: true })).filter((f) => f.endsWith('.d.ts'));
    assert.ok(declarations.length > 20, `${declarations.length} declaration files`);
    for (const f of declarations) assert.doesNotMatch(await readFile(join(installed, 'mcumgr', 'dist', f), 'utf8'), /declare global|interface DataView\b/, f);
  });

  it('a plain .mjs talks to the installed `mcumgr serve`: echo, image list, image upload', async () => {
    const script = `
import { SmpClient, commands, uploadImage } from 'mcumgr';
import { openUdpClient } from 'mcumgr/transport/udp';
import { buildImage } from 'mcumgr/image';
const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: Number(process.argv[2]) }), { timeoutMs: 2000, tries: 3 });
console.log('echo:', (await client.request(commands.os.echo, { d: 'from the tarball' })).r);
console.log('running:', (await client.request(commands.image.state, {})).images.find((s) => s.active)?.version);
const image = await buildImage({ version: '2.0.0', payload: new Uint8Array(20000).fill(7) });
const result = await uploadImage(client, image.bytes);
console.log('uploaded:', result.match !== false);
const slot1 = (await client.request(commands.image.state, {})).images.find((s) => s.slot === 1);
console.log('slot 1:', slot1?.version, Buffer.from(slot1?.hash ?? []).equals(Buffer.from(image.hash)));
await client.close();
`;
    await writeFile(join(app, 'app.mjs'), script);
    const serve = await startInstalledServe('device');
    try {
      const { stdout } = await run(process.execPath, ['app.mjs', String(serve.port)], { cwd: app, env: cleanEnv() });
      assert.equal(stdout, 'echo: from the tarball\nrunning: 1.0.0\nuploaded: true\nslot 1: 2.0.0 true\n');
    } finally {
      serve.stop();
    }
  });

  it("the README's Library example runs verbatim as a .mjs (only the port is the served one) and compiles as .ts", async () => {
    const snippet = readmeLibraryExample(await readFile(join(ROOT, 'README.md'), 'utf8'));
    assert.equal(snippet.split('port: 1337').length, 2, 'the example connects to port 1337 once');
    const serve = await startInstalledServe('device-readme');
    try {
      await writeFile(join(app, 'readme.mjs'), snippet.replace('port: 1337', `port: ${serve.port}`));
      const { stdout } = await run(process.execPath, ['readme.mjs'], { cwd: app, env: cleanEnv() });
      assert.equal(stdout, 'os: invalid format (err 0/2) OS_MGMT_ERR_INVALID_FORMAT\n');
    } finally {
      serve.stop();
    }
  });

  it("a strict NodeNext TypeScript consumer and the README's Library example compile with zero errors; a wrong request field is a type error", async () => {
    const consumer = `
import { SmpClient, commands, DeviceError, type SmpTransport } from 'mcumgr';
import { openUdpClient, createUdpServer } from 'mcumgr/transport/udp';
import { createEmulator } from 'mcumgr/server';
import { buildImage, parseImage } from 'mcumgr/image';
import { encodeConsoleFrame } from 'mcumgr/framing';
import { NetMgmt } from 'mcumgr/netmgmt';
import { openSerialClient } from 'mcumgr/transport/serial';
import { createLoopbackPair } from 'mcumgr/transport/loopback';

export async function echo(port: number): Promise<string> {
  const transport: SmpTransport = await openUdpClient({ host: '127.0.0.1', port });
  const client = new SmpClient(transport);
  const { r }: { r: string } = await client.request(commands.os.echo, { d: 'typed' });
  // @ts-expect-error: echo's request field is d, not text
  await client.request(commands.os.echo, { text: 'typed' });
  try {
    await client.request(commands.os.info, { format: 'q' });
  } catch (e) {
    if (e instanceof DeviceError) return e.errorName;
  }
  return r;
}
export const parts = [createUdpServer, createEmulator, buildImage, parseImage, encodeConsoleFrame, NetMgmt, openSerialClient, createLoopbackPair];
`;
    await writeFile(join(app, 'consumer.ts'), consumer);
    // The README's Library example, as the TypeScript it is labelled.
    await writeFile(join(app, 'readme.ts'), readmeLibraryExample(await readFile(join(ROOT, 'README.md'), 'utf8')));
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false, typeRoots: [join(ROOT, 'node_modules', '@types')], types: ['node'] },
        files: ['consumer.ts', 'readme.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', app], { cwd: app, env: cleanEnv() }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    assert.equal(result.out, '');
    assert.equal(result.code, 0);
  });

  it('without the optional native packages (as --omit=optional leaves it): serial names the packages it needs, net monitor falls back to polling and says why, UDP works', async () => {
    const modules = join(app, 'node_modules');
    const hidden = ['@serialport', 'netlink'].filter((p) => existsSync(join(modules, p)));
    assert.ok(hidden.length > 0, 'the optional packages were installed');
    for (const p of hidden) await rename(join(modules, p), join(modules, `.hidden-${p}`));
    const serve = await startInstalledServe('device-no-optional');
    try {
      const cli = join(modules, '.bin', 'mcumgr');
      const serial = await run(cli, ['--serial', join(tmp.path, 'no-port'), 'echo', 'x'], { cwd: app, env: cleanEnv() }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(serial.code, 3, serial.stderr);
      assert.match(serial.stderr, /^Error: cannot open serial port .*no-port: serial ports need the optional packages @serialport\/stream and @serialport\/bindings-cpp \(npm install @serialport\/stream @serialport\/bindings-cpp\)/);
      assert.doesNotMatch(serial.stderr, /\n\s+at /, 'no stack trace');
      const net = await run(cli, ['net', 'monitor', '--initial', '--count', '1'], { cwd: app, env: cleanEnv() });
      assert.match(net.stderr, /^net monitor: \d+ interfaces, source poll \(netlink unavailable: (rtnetlink needs the optional package netlink \(npm install netlink\)|rtnetlink needs Linux)/);
      assert.match(net.stdout, /^NET_EVENT_\w+ 0x[0-9A-F]+ \S+\n$/);
      const echo = await run(cli, ['--udp', `127.0.0.1:${serve.port}`, 'echo', 'still works'], { cwd: app, env: cleanEnv() });
      assert.equal(echo.stdout, 'still works\n');
    } finally {
      serve.stop();
      for (const p of hidden) await rename(join(modules, `.hidden-${p}`), join(modules, p));
    }
  });

  it('esbuild bundles the browser entry with no Node built-in', async () => {
    await writeFile(join(app, 'browser.mjs'), "import { SmpClient, commands, createLoopbackPair } from 'mcumgr';\nexport { SmpClient, commands, createLoopbackPair };\n");
    const result = await build({ entryPoints: [join(app, 'browser.mjs')], absWorkingDir: app, bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', metafile: true });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((i) => i.includes('node_modules/mcumgr/dist/')), 'bundled from the installed package');
    assert.ok(!inputs.some((i) => i.startsWith('node:')), 'no Node built-in');
  });
});

/**
 * `fleet shell` and `fleet fs upload|download|stat`: the client's shell exec and fs transfers run
 * as fleet jobs, in the local store (jobs in the controller process) and through NATS JetStream
 * (a real nats-server, one `mcumgr gateway` process). Real emulated devices on loopback UDP, the
 * CLI as processes, real files. Time limits are hang guards only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { payload, runCli, tempDir } from './helpers.ts';
import { NATS_SKIP, startNatsServer, type NatsServer } from './nats.ts';
import { spawnCli, startDevices, type CliProcess, type Devices } from './fleet-helpers.ts';

interface Result {
  device: string;
  gateway: string;
  outcome: string;
  error?: { code: string; message: string; name?: string };
  output?: { o?: string; ret?: number; path?: string; size?: number; sha256?: string; verified?: { type: string; value: string } };
}

const parse = (stdout: string): Result[] => JSON.parse(stdout) as Result[];

/** The store flags go before a `--` (what follows it is the device's command). */
const withFlags = (args: string[], flags: string[]): string[] => {
  const i = args.indexOf('--');
  return i < 0 ? [...args, ...flags] : [...args.slice(0, i), ...flags, ...args.slice(i)];
};

/** The checks both modes share: shell on every device, an upload then a download with the same bytes. */
async function shellAndFiles(fleet: (args: string[]) => ReturnType<typeof runCli>, ids: readonly string[], work: string, gateway: string): Promise<void> {
  const sh = await fleet(['shell', '--json', '--', 'kernel', 'version']);
  assert.equal(sh.code, 0, sh.stderr + sh.stdout);
  const shells = parse(sh.stdout);
  assert.deepEqual(shells.map((r) => r.device), [...ids]);
  for (const r of shells) {
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(r.gateway, gateway);
    assert.equal(r.output?.ret, 0);
    assert.match(r.output?.o ?? '', /^Zephyr version \S+/, r.device);
  }

  const content = payload(5000, 7);
  const local = join(work, 'config.bin');
  await writeFile(local, content);
  const up = await fleet(['fs', 'upload', local, '/lfs/config.bin', '--json']);
  assert.equal(up.code, 0, up.stderr + up.stdout);
  for (const r of parse(up.stdout)) {
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(r.output?.size, content.length);
    // The emulator has fs hash: every device checked what it holds.
    assert.equal(r.output?.verified?.type, 'sha256', r.device);
  }

  const stat = await fleet(['fs', 'stat', '/lfs/config.bin', '--json']);
  assert.equal(stat.code, 0, stat.stderr);
  assert.deepEqual(parse(stat.stdout).map((r) => [r.device, r.output?.size]), ids.map((d) => [d, content.length]));

  const outDir = join(work, 'out');
  const down = await fleet(['fs', 'download', '/lfs/config.bin', '--out', outDir, '--json']);
  assert.equal(down.code, 0, down.stderr + down.stdout);
  for (const r of parse(down.stdout)) assert.equal(r.outcome, 'ok', JSON.stringify(r));
  // One whole file per device and nothing else (no partial files left beside them).
  assert.deepEqual((await readdir(outDir)).sort(), [...ids]);
  for (const d of ids) assert.deepEqual(new Uint8Array(await readFile(join(outDir, d))), content, d);
}

describe('fleet shell and fs jobs in the local store', { timeout: 300_000 }, () => {
  let devices: Devices;
  let dir: { path: string; remove(): Promise<void> };
  let store: string;
  const ids = ['j1', 'j2', 'j3'];
  const fleet = (args: string[]): ReturnType<typeof runCli> => runCli(['fleet', ...withFlags(args, ['--fleet-dir', store])]);

  before(async () => {
    dir = await tempDir('mcumgr-fleet-jobs-');
    store = join(dir.path, 'store');
    devices = await startDevices(3);
    for (const [i, d] of ids.entries()) {
      const r = await fleet(['devices', 'add', d, '--udp', `127.0.0.1:${devices.ports[i]}`, '--label', 'rack=1']);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    await devices?.close();
    await dir?.remove();
  });

  it('shell on 3 devices gives each output and return code; fs upload then download gives identical bytes per device', async () => {
    await shellAndFiles(fleet, ids, dir.path, 'local');
    // Human output: each device's output on stdout under its name and return code.
    const human = await fleet(['shell', '--select', 'rack=1', '--', 'kernel', 'version']);
    assert.equal(human.code, 0, human.stderr);
    for (const d of ids) assert.match(human.stdout, new RegExp(`== ${d} \\(returned 0\\)\\n  Zephyr version`));
    assert.match(human.stdout, /shell: 3\/3 ok/);
  });

  it('a shell command that fails on the device exits 1 naming the device, its output and return code', async () => {
    const r = await fleet(['shell', '--select', 'id=j2', '--', 'no-such-command']);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.match(r.stdout, /== j2 \(returned -?[1-9]\d*\)\n {2}no-such-command: command not found/);
    assert.match(r.stdout, /shell: 0\/1 ok; failed: j2 \(FLEET_SHELL_RC: `no-such-command` returned -?[1-9]\d*\)/);
    assert.match(r.stderr, /j2: FAILED returned/);
    const json = await fleet(['shell', '--json', '--', 'no-such-command']);
    assert.equal(json.code, 1);
    for (const x of parse(json.stdout)) {
      assert.equal(x.outcome, 'failed');
      assert.notEqual(x.output?.ret, 0);
      assert.equal(x.error?.code, 'FLEET_SHELL_RC');
    }
  });

  it('fs download of a file a device lacks fails by the device error name and writes nothing for it', async () => {
    const out = join(dir.path, 'missing');
    const r = await fleet(['fs', 'download', '/lfs/no-such-file', '--select', 'id=j1', '--out', out]);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.match(r.stdout, /failed: j1 \(FS_MGMT_ERR_FILE_NOT_FOUND: fs: file not found \(err 8\/3\)\)/);
    assert.deepEqual(await readdir(out), []);
    const up = await fleet(['fs', 'upload', join(dir.path, 'no-such-local'), '/lfs/x']);
    assert.equal(up.code, 2, up.stderr);
    assert.match(up.stderr, /cannot read .*no-such-local/);
  });
});

describe('fleet shell and fs jobs through NATS: real nats-server, one gateway process', { skip: NATS_SKIP, timeout: 300_000 }, () => {
  let nats: NatsServer;
  let devices: Devices;
  let dir: { path: string; remove(): Promise<void> };
  let gateway: CliProcess;
  const ids = ['n1', 'n2'];
  const fleet = (args: string[]): ReturnType<typeof runCli> => runCli(['fleet', ...withFlags(args, ['--nats', nats.url])], { timeoutMs: 240_000 });

  before(async () => {
    nats = await startNatsServer();
    dir = await tempDir('mcumgr-fleet-jobs-nats-');
    devices = await startDevices(2);
    for (const [i, d] of ids.entries()) {
      const r = await fleet(['devices', 'add', d, '--gateway', 'gw-1', '--udp', `127.0.0.1:${devices.ports[i]}`]);
      assert.equal(r.code, 0, r.stderr);
    }
    gateway = spawnCli(['gateway', '--nats', nats.url, '--name', 'gw-1', '--parallel', '2', '-t', '1', '-r', '5']);
    await gateway.waitFor(/gateway gw-1 ready/);
  });

  after(async () => {
    await gateway?.kill('SIGTERM');
    await devices?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it('shell and fs upload/download run through the gateway: output and rc per device, identical bytes back, device errors by name', async () => {
    await shellAndFiles(fleet, ids, dir.path, 'gw-1');
    // The gateway ran them (its log names each job).
    await gateway.waitFor(/done shell-\S+ n1 ok/);
    await gateway.waitFor(/done fs-download-\S+ n2 ok/);
    const bad = await fleet(['shell', '--select', 'id=n2', '--', 'no-such-command']);
    assert.equal(bad.code, 1, bad.stderr + bad.stdout);
    assert.match(bad.stdout, /failed: n2 \(FLEET_SHELL_RC/);
    // A device error comes back from the gateway by name.
    const missing = await fleet(['fs', 'download', '/lfs/no-such-file', '--select', 'id=n1', '--out', join(dir.path, 'missing')]);
    assert.equal(missing.code, 1, missing.stderr + missing.stdout);
    assert.match(missing.stdout, /failed: n1 \(FS_MGMT_ERR_FILE_NOT_FOUND: fs: file not found \(err 8\/3\)\)/);
  });
});

/**
 * The CLI as a user runs it over serial: `mcumgr serve --pty` and `mcumgr serve --serial PATH`
 * as processes, and `mcumgr --conntype serial --connstring ...` / `--serial` as processes against
 * them, over real pseudo-terminals.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, runCli, tempDir } from './helpers.ts';
import { ptyPair, socatMissing, stopChild } from './pty.ts';

let tmp: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  tmp = await tempDir('mcumgr-cli-serial-');
});
after(async () => {
  await tmp.remove();
});

interface ServeProcess {
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/** Starts `mcumgr serve ARGS` and waits for its "listening on" line. */
async function serve(args: string[]): Promise<ServeProcess & { listening: string }> {
  const child = spawn(CLI, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listening = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 20000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (.*) \(data: /.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
  return {
    child,
    listening,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

describe('cli: mcumgr serve --pty', { skip: socatMissing }, () => {
  let device: Awaited<ReturnType<typeof serve>>;
  let link: string;
  let pts: string;
  before(async () => {
    link = join(tmp.path, 'pty-link');
    device = await serve(['--pty', '--pty-link', link, '--data', join(tmp.path, 'pty-device')]);
    const m = /^pty (\/dev\/pts\/\d+) \(link (.*)\), console framing$/.exec(device.listening);
    assert.ok(m, `serve --pty prints the pty path: ${device.listening}`);
    pts = m[1]!;
    assert.equal(m[2], link);
  });
  after(async () => {
    await device.stop();
  });

  it('serves only the pty (no UDP unless --udp is given)', () => {
    assert.doesNotMatch(device.output(), /udp/);
  });

  it('Go mcumgr syntax: --conntype serial --connstring dev=PATH,baud=N,mtu=N echo', async () => {
    const r = await runCli(['--conntype', 'serial', '--connstring', `dev=${link},baud=115200,mtu=256`, 'echo', 'hello', 'serial']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello serial\n');
  });

  it('legacy --connstring PATH, the /dev/pts path itself, and the short --serial form', async () => {
    const legacy = await runCli(['--conntype', 'serial', '--connstring', pts, 'echo', 'legacy']);
    assert.equal(legacy.stdout, 'legacy\n', legacy.stderr);
    const short = await runCli(['--serial', link, 'params']);
    assert.equal(short.code, 0, short.stderr);
    assert.equal(short.stdout, 'buf_size=2048 buf_count=4\n');
    const json = await runCli(['--serial', `dev=${link}`, '--json', 'info', 'a']);
    assert.equal(json.code, 0, json.stderr);
    assert.match(JSON.parse(json.stdout).output, /^Zephyr /);
  });

  it('shell exec and fs upload/download through the CLI', async () => {
    const sh = await runCli(['--serial', link, 'shell', 'exec', 'kernel', 'version']);
    assert.equal(sh.code, 0, sh.stderr);
    assert.match(sh.stdout, /Zephyr version/);
    const local = join(tmp.path, 'up.bin');
    const back = join(tmp.path, 'down.bin');
    const body = new Uint8Array(randomBytes(20000));
    await writeFile(local, body);
    const up = await runCli(['--serial', link, 'fs', 'upload', local, '/lfs/cli.bin']);
    assert.equal(up.code, 0, up.stderr);
    const down = await runCli(['--serial', link, 'fs', 'download', '/lfs/cli.bin', back]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(new Uint8Array(await readFile(back)), body);
  });

  it('-v shows the packets; a bad connstring is a usage error (exit 2)', async () => {
    const v = await runCli(['--serial', link, '-v', 'echo', 'x']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stderr, /^tx 0a 00 00 05 00 00 [0-9a-f]{2} 00 a1 61 64 61 78$/m);
    const bad = await runCli(['--conntype', 'serial', '--connstring', `dev=${link},speed=9`, 'echo', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unrecognized key "speed"/);
  });
});

describe('cli: mcumgr serve --pty --kconfig: the serial link is sized by the .config', { skip: socatMissing }, () => {
  it('NETBUF_SIZE 384: params say 384 and a longer request is dropped on the line (serve -v says why), as Zephyr drops what does not fit its net_buf', async () => {
    const config = join(tmp.path, 'small.config');
    await writeFile(config, 'CONFIG_MCUMGR_GRP_OS=y\nCONFIG_MCUMGR_GRP_OS_ECHO=y\nCONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS=y\nCONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE=384\nCONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT=4\n');
    const link = join(tmp.path, 'kconfig-pty');
    const device = await serve(['-v', '--fast', '--pty', '--pty-link', link, '--kconfig', config, '--data', join(tmp.path, 'kconfig-device')]);
    try {
      const params = await runCli(['--serial', link, 'params']);
      assert.equal(params.stdout, 'buf_size=384 buf_count=4\n', params.stderr);
      const dropped = new Promise<void>((resolve) => {
        const check = (): void => void (/serial \/dev\/pts\/\d+ undecodable: bad length/.test(device.output()) && resolve());
        device.child.stderr!.on('data', check);
        check();
      });
      const long = await runCli(['--serial', `dev=${link},mtu=2048`, '-t', '1', '-r', '1', 'echo', 'x'.repeat(800)]);
      assert.equal(long.code, 3, long.stderr);
      assert.match(long.stderr, /no response from the device/);
      await dropped;
      const short = await runCli(['--serial', link, 'echo', 'fits']);
      assert.equal(short.stdout, 'fits\n', short.stderr);
    } finally {
      await device.stop();
    }
  });
});

describe('cli: mcumgr serve --serial PATH (a socat pty pair as the cable)', { skip: socatMissing }, () => {
  let socat: ChildProcess;
  let device: Awaited<ReturnType<typeof serve>>;
  const hostEnd = (): string => join(tmp.path, 'host-end');
  const deviceEnd = (): string => join(tmp.path, 'device-end');
  before(async () => {
    socat = (await ptyPair(hostEnd(), deviceEnd())).child;
    device = await serve(['--serial', deviceEnd(), '--data', join(tmp.path, 'serial-device')]);
  });
  after(async () => {
    await device.stop();
    await stopChild(socat);
  });

  it('prints the device path and answers the CLI on the other end', async () => {
    assert.equal(device.listening, `serial ${deviceEnd()}, console framing`);
    const r = await runCli(['--conntype', 'serial', '--connstring', `dev=${hostEnd()}`, 'echo', 'over', 'the', 'cable']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'over the cable\n');
    const stat = await runCli(['--serial', hostEnd(), 'stat', 'list']);
    assert.equal(stat.code, 0, stat.stderr);
    assert.match(stat.stdout, /smp_serial/);
  });
});

describe('cli: serial failures', { skip: socatMissing }, () => {
  it('a port nobody answers on times out with exit code 3', async () => {
    const silent = join(tmp.path, 'silent');
    const pair = await ptyPair(silent, `${silent}-other`);
    try {
      const r = await runCli(['--serial', silent, '-t', '0.3', '-r', '2', 'echo', 'x']);
      assert.equal(r.code, 3);
      assert.match(r.stderr, /no response from the device after 2 tries/);
    } finally {
      await pair.stop();
    }
  });

  it('-v reports the frames the decoder dropped (a bad CRC from the device)', async () => {
    const host = join(tmp.path, 'noisy');
    const device = `${host}-device`;
    const pair = await ptyPair(host, device);
    try {
      // The §4.1.4 echo frame with its CRC's last byte changed (0x19 → 0x00), written once the
      // CLI says (in -v mode) that the port is open, so that its decoder sees the frame.
      const child = spawn(CLI, ['--serial', host, '-v', '-t', '2', '-r', '1', 'echo', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let written = false;
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (!written && /serial: opened /.test(stderr)) {
          written = true;
          writeFileSync(device, Buffer.from('\x06\x09ABMKAAAJAABCAKFhZGVoZWxsb0YA\n', 'latin1'));
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.ok(written, stderr);
      assert.equal(code, 3);
      assert.match(stderr, /serial: frames dropped: bad CRC 1\n/);
    } finally {
      await pair.stop();
    }
  });

  it('a missing device is a transport error naming the path (exit 3)', async () => {
    const r = await runCli(['--serial', join(tmp.path, 'no-such-port'), 'echo', 'x']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot open serial port .*no-such-port/);
  });
});

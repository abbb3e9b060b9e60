/**
 * `mcumgr serve --devices N`: many emulated devices in one real process on consecutive UDP ports
 * of 127.0.0.1, each with its own data directory (real files) and state; the seeded faults of
 * `--fail-rate`; bad arguments. Upgrades go through the real CLI (`upgrade`: upload, test, reset,
 * verify, confirm). Also the sparse slot storage the devices use, against the plain one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, runCli, startServeProcess, tempDir } from './helpers.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { SmpClient } from '../src/client/client.ts';
import { commands } from '../src/core/commands/index.ts';
import { TransportError } from '../src/core/errors.ts';
import { buildImage, parseImage } from '../src/image/index.ts';
import { toHex } from '../src/core/bytes.ts';
import { McubootModel } from '../src/server/mcuboot/index.ts';
import { planFaults, type DeviceFault } from '../src/server/device-farm.ts';

type Dir = Awaited<ReturnType<typeof tempDir>>;

async function imageFile(dir: Dir, version: string): Promise<{ file: string; hash: string }> {
  const payload = new Uint8Array(30_000).map((_, i) => (i * 29 + version.charCodeAt(0)) & 0xff);
  const built = await buildImage({ payload, version });
  const file = join(dir.path, `app-${version}.bin`);
  await writeFile(file, built.bytes);
  return { file, hash: toHex(built.hash) };
}

/** A library client on device `port` (quick tries: these devices are instant). */
async function client(port: number, options: { timeoutMs?: number; tries?: number } = {}): Promise<SmpClient> {
  return new SmpClient(await openUdpClient({ host: '127.0.0.1', port, mtu: 2048 }), { timeoutMs: options.timeoutMs ?? 2000, tries: options.tries ?? 3 });
}

/** The slot list of one device as `slot version flags` lines. */
async function slots(port: number): Promise<string[]> {
  const c = await client(port);
  try {
    const { images } = await c.request(commands.image.state, {});
    return images.map((s) => `${s.slot} ${s.version} ${(['active', 'confirmed', 'pending'] as const).filter((k) => s[k]).join(',') || '-'}`);
  } finally {
    await c.close();
  }
}

/** Starts `serve --devices N` and reads its range line. */
async function startDevices(args: string[]): Promise<Awaited<ReturnType<typeof startServeProcess>> & { base: number; last: number; count: number }> {
  const serve = await startServeProcess(args);
  // The line is one write: the whole of it is there once the port was seen.
  const m = /listening on udp 127\.0\.0\.1:(\d+)\.\.(\d+) \((\d+) devices?/.exec(serve.output());
  if (!m) {
    await serve.stop();
    assert.fail(`no range line: ${serve.output()}`);
  }
  return Object.assign(serve, { base: Number(m[1]), last: Number(m[2]), count: Number(m[3]) });
}

function ok(r: { code: number | null; stderr: string; stdout: string }): void {
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
}

describe('serve --devices N: many devices in one process (real process, UDP on 127.0.0.1)', () => {
  it('20 devices on consecutive ports, each with its own state; an upgrade of device 3 changes only device 3; a restart keeps every state; the data directory is locked', async () => {
    const dir = await tempDir('serve-devices-');
    const data = join(dir.path, 'farm');
    let serve = await startDevices(['--devices', '20', '--data', data]);
    try {
      assert.equal(serve.count, 20);
      assert.equal(serve.last, serve.base + 19);
      assert.match(serve.output(), new RegExp(`data: ${data.replace(/[/.]/g, '\\$&')}/<i>`));
      // Every port answers, and keeps what was written to it alone.
      for (let i = 0; i < 20; i++) {
        const c = await client(serve.base + i);
        try {
          assert.equal((await c.request(commands.os.echo, { d: `device ${i}` })).r, `device ${i}`);
          await c.request(commands.settings.write, { name: 'app/id', val: new TextEncoder().encode(`id-${i}`) });
          await c.request(commands.settings.save, {});
        } finally {
          await c.close();
        }
      }
      for (let i = 0; i < 20; i++) {
        const c = await client(serve.base + i);
        try {
          assert.equal(new TextDecoder().decode((await c.request(commands.settings.read, { name: 'app/id' })).val), `id-${i}`);
        } finally {
          await c.close();
        }
        assert.deepEqual(await slots(serve.base + i), ['0 1.0.0 active,confirmed'], `device ${i}`);
      }
      // Each device has its own data directory.
      for (const i of [0, 3, 19]) assert.ok((await stat(join(data, String(i), 'mcuboot', 'layout.json'))).isFile());

      const v2 = await imageFile(dir, '2.0.0');
      const up = await runCli(['--udp', `127.0.0.1:${serve.base + 3}`, '-t', '2', 'upgrade', v2.file]);
      ok(up);
      assert.equal(up.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n');
      for (let i = 0; i < 20; i++) assert.deepEqual(await slots(serve.base + i), i === 3 ? ['0 2.0.0 active,confirmed', '1 1.0.0 -'] : ['0 1.0.0 active,confirmed'], `device ${i}`);

      // One farm (or serve) per data directory.
      const second = await runCli(['serve', '--devices', '2', '--udp', '127.0.0.1:0', '--fast', '--data', data]);
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, /data directory .* is in use by another emulator \(pid \d+\)/);

      await serve.stop();
      serve = await startDevices(['--devices', '20', '--data', data]);
      for (let i = 0; i < 20; i++) {
        assert.deepEqual(await slots(serve.base + i), i === 3 ? ['0 2.0.0 active,confirmed', '1 1.0.0 -'] : ['0 1.0.0 active,confirmed'], `device ${i} after the restart`);
        const c = await client(serve.base + i);
        try {
          assert.equal(new TextDecoder().decode((await c.request(commands.settings.read, { name: 'app/id' })).val), `id-${i}`);
        } finally {
          await c.close();
        }
      }
    } finally {
      await serve.stop();
      await dir.remove();
    }
  });

  it('--fail-rate with a seed: the devices it names revert, drop or go silent; the others upgrade', async () => {
    const dir = await tempDir('serve-devices-');
    const args = ['--devices', '12', '--data', join(dir.path, 'farm'), '--fail-rate', '0.5', '--fail-seed', '42'];
    const serve = await startDevices(args);
    try {
      const out = serve.output();
      assert.match(out, /faults: seed 42, fail-rate 0\.5: 6 of 12 devices misbehave/);
      const named = (kind: DeviceFault): number[] => {
        const m = new RegExp(`^fault ${kind}: ([\\d,]+|none) `, 'm').exec(out);
        assert.ok(m, `no fault ${kind} line in ${out}`);
        return m[1] === 'none' ? [] : m[1]!.split(',').map(Number);
      };
      const plan = planFaults(12, { rate: 0.5, seed: 42 });
      // Printed as planned, two of each kind, and the same seed always picks the same devices.
      for (const kind of ['revert', 'drop', 'silent'] as const) {
        assert.deepEqual(named(kind), plan.byKind[kind]);
        assert.equal(named(kind).length, 2);
      }
      assert.deepEqual(planFaults(12, { rate: 0.5, seed: 42 }).byKind, plan.byKind);
      assert.notDeepEqual(planFaults(12, { rate: 0.5, seed: 43 }).byKind, plan.byKind);

      const v2 = await imageFile(dir, '2.0.0');
      const port = (i: number): number => serve.base + i;
      const upgrade = (i: number): ReturnType<typeof runCli> => runCli(['--udp', `127.0.0.1:${port(i)}`, '-t', '2', '-r', '12', 'upgrade', v2.file]);
      const silent = plan.byKind.silent;
      const others = Array.from({ length: 12 }, (_, i) => i).filter((i) => !silent.includes(i));
      const results = await Promise.all(others.map(async (i) => [i, await upgrade(i)] as const));
      for (const [i, r] of results) {
        if (plan.byKind.revert.includes(i)) {
          assert.equal(r.code, 1, `device ${i} should revert: ${r.stdout}${r.stderr}`);
          assert.match(r.stderr, /the device came back running 1\.0\.0 instead of 2\.0\.0/);
          // MCUboot put the old image back: it runs confirmed, the new one sits unmarked in slot 1.
          assert.deepEqual(await slots(port(i)), ['0 1.0.0 active,confirmed', '1 2.0.0 -'], `device ${i}`);
        } else {
          ok(r);
          assert.equal(r.stdout, 'Upgraded image 0: 1.0.0 → 2.0.0, confirmed\n', `device ${i}`);
          assert.deepEqual(await slots(port(i)), ['0 2.0.0 active,confirmed', '1 1.0.0 -'], `device ${i}`);
        }
      }
      // A drop device loses datagrams: some of 30 echoes, each tried once, get no answer.
      const lossy = await client(port(plan.byKind.drop[0]!), { timeoutMs: 1000, tries: 1 });
      try {
        let lost = 0;
        for (let n = 0; n < 30; n++) await lossy.request(commands.os.echo, { d: `e${n}` }).catch(() => lost++);
        assert.ok(lost > 0 && lost < 30, `lost ${lost} of 30`);
      } finally {
        await lossy.close();
      }
      // A silent device answers until an image upload reaches it; then nothing more.
      for (const i of silent) {
        const c = await client(port(i), { timeoutMs: 300, tries: 2 });
        try {
          assert.equal((await c.request(commands.os.echo, { d: 'before' })).r, 'before');
          const bytes = new Uint8Array(64);
          await assert.rejects(c.request(commands.image.upload, { off: 0, len: 1000, data: bytes, sha: new Uint8Array(32) }), (e) => e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT');
          await assert.rejects(c.request(commands.os.echo, { d: 'after' }), (e) => e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT');
        } finally {
          await c.close();
        }
      }
    } finally {
      await serve.stop();
      await dir.remove();
    }
  });

  it('bad arguments are usage errors (exit 2) and start nothing; --json start line', async () => {
    const dir = await tempDir('serve-devices-');
    const blocker = createSocket('udp4');
    await new Promise<void>((res) => blocker.bind(0, '127.0.0.1', res));
    const taken = blocker.address().port;
    try {
      const data = join(dir.path, 'farm');
      const cases: Array<[string[], RegExp]> = [
        [['--devices', '0', '--udp', '127.0.0.1:40000'], /--devices must be a positive integer, got "0"/],
        [['--devices', '3'], /--devices N needs --udp HOST:BASEPORT/],
        [['--devices', '10', '--udp', '127.0.0.1:65530'], /--devices 10 from port 65530 needs ports 65530\.\.65539, past 65535/],
        [['--devices', '3', '--udp', '127.0.0.1:40000', '--fail-rate', '1.5'], /--fail-rate must be a number from 0 to 1, got "1\.5"/],
        [['--udp', '127.0.0.1:40000', '--fail-rate', '0.1'], /--fail-rate needs --devices N/],
        [['--devices', '3', '--udp', '127.0.0.1:40000', '--fail-rate', '0.1', '--fail-kinds', 'revert,explode'], /--fail-kinds takes a comma-separated list of revert, drop, silent/],
        [['--devices', '3', '--udp', '127.0.0.1:40000', '--pty'], /--devices serves UDP only/],
        // A range partly in use fails whole, naming the range.
        [['--devices', '3', '--udp', `127.0.0.1:${taken - 1}`], new RegExp(`a UDP port in ${taken - 1}\\.\\.${taken + 1} on 127\\.0\\.0\\.1 is already in use`)],
      ];
      for (const [args, message] of cases) {
        const r = await runCli(['serve', '--fast', '--data', data, ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, message, args.join(' '));
        assert.doesNotMatch(r.stdout, /listening on/);
      }
      // serve --help documents the flags.
      const help = (await runCli(['serve', '--help'])).stdout.replace(/\s+/g, ' ');
      for (const [flag, text] of [
        ['--devices <n>', /device i listens on UDP BASEPORT\+i of --udp HOST:BASEPORT/],
        ['--fail-rate <p>', /revert .* drop .* silent/],
        ['--fail-seed <n>', /default 1/],
        ['--fail-kinds <list>', /default revert,drop,silent/],
        ['--drop-rate <p>', /default 0\.1/],
      ] as const) {
        const at = help.indexOf(flag);
        assert.ok(at >= 0, `${flag} in serve --help`);
        assert.match(help.slice(at, at + 400), text, flag);
      }
      // The failed start released its lock and bound nothing: a good one starts on the same
      // directory, and with --json says where in one line.
      const child = spawn(CLI, ['--json', 'serve', '--devices', '3', '--udp', '127.0.0.1:0', '--fast', '--data', data, '--fail-rate', '0.34', '--fail-kinds', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
          });
          child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
        });
        const j = JSON.parse(line) as { listening: string[]; devices: number; basePort: number; lastPort: number; dataDir: string; faults: { seed: number; rate: number; revert: number[]; drop: number[]; silent: number[] } };
        assert.equal(j.devices, 3);
        assert.equal(j.lastPort, j.basePort + 2);
        assert.deepEqual(j.listening, [`udp 127.0.0.1:${j.basePort}..${j.lastPort}`]);
        assert.equal(j.dataDir, data);
        assert.deepEqual({ ...j.faults }, { seed: 1, rate: 0.34, dropRate: 0.1, revert: [], drop: [], silent: planFaults(3, { rate: 0.34, seed: 1, kinds: ['silent'] }).byKind.silent });
        assert.equal(j.faults.silent.length, 1);
      } finally {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    } finally {
      blocker.close();
      await dir.remove();
    }
  });
});

describe('sparse slot storage (real files)', () => {
  const SLOT = 0x40000;

  async function image(version: string, size: number): Promise<Uint8Array> {
    return (await buildImage({ payload: new Uint8Array(size).map((_, i) => (i * 7 + version.charCodeAt(0)) & 0xff), version })).bytes;
  }

  /** Upload, test, reset, confirm; then a second image left in test and reverted. */
  async function story(m: McubootModel): Promise<void> {
    for (const [version, confirm] of [['2.0.0', true], ['3.0.0', false]] as const) {
      const bytes = await image(version, 50_000);
      await m.openUpload(0, bytes.length);
      for (let off = 0; off < bytes.length; off += 4096) await m.writeUpload(off, bytes.subarray(off, off + 4096));
      await m.finishUpload();
      await m.setNextBoot(parseImage(bytes).hash, false);
      await m.boot();
      if (confirm) await m.setNextBoot(undefined, true);
    }
    await m.boot(); // 3.0.0 was never confirmed: reverted
  }

  it('a new sparse device writes (almost) no slot blocks, and a swap, a confirm and a revert leave the same flash as plain storage', async () => {
    const dir = await tempDir('sparse-slots-');
    try {
      const sparse = await McubootModel.open({ dir: join(dir.path, 'sparse'), slotSize: SLOT, sectorSize: 0x8000, sparseSlots: true });
      const plain = await McubootModel.open({ dir: join(dir.path, 'plain'), slotSize: SLOT, sectorSize: 0x8000 });
      try {
        const secondary = await stat(join(dir.path, 'sparse', 'image-0', 'slot-1.bin'));
        assert.equal(secondary.size, SLOT);
        assert.ok(secondary.blocks * 512 < 16 * 1024, `an erased sparse slot holds ${secondary.blocks * 512} bytes on disk`);
        assert.ok((await stat(join(dir.path, 'plain', 'image-0', 'slot-1.bin'))).blocks * 512 >= SLOT);
        assert.equal(await sparse.slot(1).isErased(), true);
        await story(sparse);
        await story(plain);
        const summary = async (m: McubootModel): Promise<string[]> => (await m.imageStates()).map((s) => `${s.slot} ${s.version} ${s.active ? 'active' : ''}${s.confirmed ? ' confirmed' : ''}`);
        assert.deepEqual(await summary(sparse), ['0 2.0.0 active confirmed', '1 3.0.0 ']);
        assert.deepEqual(await summary(sparse), await summary(plain));
        // Byte for byte the same flash, trailers included.
        for (const n of [0, 1]) {
          const digest = async (m: McubootModel): Promise<string> => {
            const h = createHash('sha256');
            for (let off = 0; off < SLOT; off += 0x10000) h.update(await m.slot(n).read(off, 0x10000));
            return h.digest('hex');
          };
          assert.equal(await digest(sparse), await digest(plain), `slot ${n}`);
        }
      } finally {
        await sparse.close();
        await plain.close();
      }
      // The layout keeps the storage: reopened without the option, the device is still sparse.
      const again = await McubootModel.open({ dir: join(dir.path, 'sparse'), slotSize: SLOT, sectorSize: 0x8000 });
      try {
        assert.deepEqual((await again.imageStates()).map((s) => s.version), ['2.0.0', '3.0.0']);
      } finally {
        await again.close();
      }
    } finally {
      await dir.remove();
    }
  });
});

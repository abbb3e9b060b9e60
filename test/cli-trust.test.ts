/**
 * The CLI never misleads: exit codes and messages a CI pipeline can trust. Each test spawns
 * ./bin/mcumgr against a `mcumgr serve` process (or nothing) and checks what a user would see.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CLI, runCli, startServeProcess, tempDir } from './helpers.ts';
import { startUdpRelay } from '../src/transport/udp-relay.ts';

let serve: Awaited<ReturnType<typeof startServeProcess>>;
let tmp: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  tmp = await tempDir('mcumgr-cli-trust-');
  serve = await startServeProcess(['--data', join(tmp.path, 'device')]);
});
after(async () => {
  await serve?.stop();
  await tmp?.remove();
});

describe('cli: connection profiles in the Go mcumgr file and format', () => {
  it('conn add, show, -c NAME, delete: ~/.mcumgr.cp.json as the Go tool writes it', async () => {
    const home = join(tmp.path, 'home-profiles');
    const env = { HOME: home, MCUMGR_CONNTYPE: '', MCUMGR_CONNSTRING: '' };
    const add = await runCli(['conn', 'add', 'emu', 'type=udp', `connstring=127.0.0.1:${serve.port}`], { env });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, 'Connection profile emu successfully added\n');
    assert.equal((await runCli(['conn', 'add', 'board', 'type=serial', 'connstring=dev=/dev/ttyACM0,baud=115200'], { env })).code, 0);
    // Go: json.MarshalIndent(list sorted by name, "", "    "), keys MyName / MyType / MyConnString.
    assert.equal(
      await readFile(join(home, '.mcumgr.cp.json'), 'utf8'),
      JSON.stringify(
        [
          { MyName: 'board', MyType: 'serial', MyConnString: 'dev=/dev/ttyACM0,baud=115200' },
          { MyName: 'emu', MyType: 'udp', MyConnString: `127.0.0.1:${serve.port}` },
        ],
        null,
        4,
      ),
    );
    const show = await runCli(['conn', 'show'], { env });
    assert.equal(show.stdout, `Connection profiles: \n  board: type=serial, connstring='dev=/dev/ttyACM0,baud=115200'\n  emu: type=udp, connstring='127.0.0.1:${serve.port}'\n`);
    const echo = await runCli(['-c', 'emu', 'echo', 'via', 'profile'], { env });
    assert.equal(echo.code, 0, echo.stderr);
    assert.equal(echo.stdout, 'via profile\n');
    const after = await runCli(['echo', 'x', '--conn', 'emu'], { env });
    assert.equal(after.stdout, 'x\n', after.stderr);
    // -c is never silently ignored: not beside another way of naming the link, nor on a command that opens none.
    for (const [args, message] of [
      [['-c', 'emu', '--udp', `127.0.0.1:${serve.port}`, 'echo', 'x'], /^Error: -c emu and --udp both name the link: give one of them\n$/],
      [['-c', 'emu', '--conntype', 'udp', '--connstring', `127.0.0.1:${serve.port}`, 'echo', 'x'], /^Error: -c emu and --conntype\/--connstring both name the link: give one of them\n$/],
      [['-c', 'emu', 'image', 'info', (await imageFile('profile.bin', '1.2.3', 100)).path], /^Error: -c emu: this command opens no connection/],
      [['conn', 'show', '-c', 'emu'], /^Error: -c emu: this command opens no connection/],
    ] as const) {
      const r = await runCli([...args], { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '');
    }
    assert.equal((await runCli(['conn', 'delete', 'emu'], { env })).stdout, 'Connection profile emu successfully deleted.\n');
    const gone = await runCli(['-c', 'emu', 'echo', 'x'], { env });
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /connection profile "emu" doesn't exist/);
    assert.equal((await runCli(['conn', 'show', 'emu'], { env })).stdout, 'No connection profiles found matching emu\n');
  });

  it('a profile file written by the Go tool is read as it is', async () => {
    const home = join(tmp.path, 'home-go');
    await mkdir(home, { recursive: true });
    await writeFile(join(home, '.mcumgr.cp.json'), `[\n    {\n        "MyName": "dev1",\n        "MyType": "udp",\n        "MyConnString": "127.0.0.1:${serve.port}"\n    }\n]`);
    const r = await runCli(['-c', 'dev1', 'params'], { env: { HOME: home } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'buf_size=2048 buf_count=4\n');
    const bad = await runCli(['conn', 'add', 'x', 'type=pigeon'], { env: { HOME: home } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Invalid connection type: pigeon/);
  });
});

describe('cli: connection usage', () => {
  it('--conntype udp without --connstring is a usage error, not a silent 127.0.0.1:1337', async () => {
    const r = await runCli(['--conntype', 'udp', 'echo', 'x'], { env: { MCUMGR_CONNSTRING: '' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--conntype udp needs --connstring/);
  });
});

describe('cli: version and help', () => {
  it('mcumgr version and --version print the package version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal((await runCli(['version'])).stdout, `mcumgr ${version}\n`);
    assert.equal((await runCli(['--version'])).stdout, `${version}\n`);
    assert.deepEqual(JSON.parse((await runCli(['--json', 'version'])).stdout), { version });
  });

  it("every subcommand's help shows the global connection options", async () => {
    for (const args of [['echo', '--help'], ['image', 'upload', '--help'], ['fs', 'download', '--help'], ['help', 'shell', 'exec']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Global Options:[\s\S]*--conntype <type>[\s\S]*--connstring <string>[\s\S]*-c, --conn <profile>[\s\S]*-t, --timeout <seconds>/, args.join(' '));
    }
  });
});

/** A signed-looking (hash TLV) MCUboot image file of `size` payload bytes. */
async function imageFile(name: string, version: string, size: number): Promise<{ path: string; bytes: Uint8Array }> {
  const { buildImage } = await import('../src/image/build.ts');
  const payload = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 0xff);
  const { bytes } = await buildImage({ version, payload });
  const path = join(tmp.path, name);
  await writeFile(path, bytes);
  return { path, bytes };
}

/** The versions in the device's slots, as `image list --json` reports them. */
async function slotVersions(port: number): Promise<string[]> {
  const r = await runCli(['--udp', `127.0.0.1:${port}`, '--json', 'image', 'list']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { images: Array<{ version: string }> }).images.map((s) => s.version);
}

describe('cli: image files are checked before anything is sent', () => {
  it('a corrupted image (hash TLV does not match) is refused with the reason, exit 2; --force sends it', async () => {
    const { path, bytes } = await imageFile('corrupt.bin', '3.0.0', 3000);
    bytes[0x200 + 10] = bytes[0x200 + 10]! ^ 0xff;
    await writeFile(path, bytes);
    const device = await startServeProcess(['--data', join(tmp.path, 'device-corrupt')]);
    try {
      for (const cmd of [['image', 'upload', path], ['upgrade', path]]) {
        const r = await runCli(['--udp', `127.0.0.1:${device.port}`, ...cmd]);
        assert.equal(r.code, 2, `${cmd[0]}: ${r.stderr}`);
        assert.match(r.stderr, /corrupt\.bin: refusing to send it: its hash TLV does not match the content.*--force/);
      }
      assert.deepEqual(await slotVersions(device.port), ['1.0.0'], 'nothing reached the device');
      const forced = await runCli(['--udp', `127.0.0.1:${device.port}`, 'image', 'upload', '--force', path]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.deepEqual(await slotVersions(device.port), ['1.0.0', '3.0.0']);
    } finally {
      await device.stop();
    }
  });

  it('a truncated image and a file that is no image are refused (exit 2), as is a directory, with no stack trace', async () => {
    const { path, bytes } = await imageFile('whole.bin', '3.0.1', 3000);
    const truncated = join(tmp.path, 'truncated.bin');
    await writeFile(truncated, bytes.subarray(0, bytes.length - 40));
    const noImage = join(tmp.path, 'text.bin');
    await writeFile(noImage, 'this is not an image at all, but long enough to have a header');
    for (const [file, reason] of [[truncated, /truncated\.bin: not a valid MCUboot image/], [noImage, /text\.bin: not a valid MCUboot image/], [tmp.path, /cannot read .*: is a directory/]] as const) {
      for (const cmd of ['image upload', 'upgrade', 'image info']) {
        const r = await runCli(['--udp', '127.0.0.1:9', ...cmd.split(' '), file]);
        assert.equal(r.code, 2, `${cmd} ${file}: ${r.stderr}`);
        assert.match(r.stderr, reason, `${cmd} ${file}`);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      }
    }
    void path;
  });
});

describe('cli: image build', () => {
  it('builds an MCUboot image from a binary that image info, upload and the device accept', async () => {
    const bin = join(tmp.path, 'app.bin');
    await writeFile(bin, new Uint8Array(5000).fill(0x5a));
    const out = join(tmp.path, 'app.signed.bin');
    const r = await runCli(['image', 'build', bin, out, '--image-version', '2.3.4+5', '--header-size', '0x200', '--align', '8']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Built .*app\.signed\.bin: \d+ bytes, version 2\.3\.4\+5, hash [0-9a-f]{64}\n$/);
    const info = JSON.parse((await runCli(['--json', 'image', 'info', out])).stdout) as { version: string; headerSize: number; imageSize: number; hashValid: boolean };
    assert.deepEqual([info.version, info.headerSize, info.imageSize, info.hashValid], ['2.3.4.5', 0x200, 5000, true]);
    const up = await runCli(['--udp', `127.0.0.1:${serve.port}`, 'image', 'upload', out]);
    assert.equal(up.code, 0, up.stderr);
    const missing = await runCli(['image', 'create', bin, join(tmp.path, 'no', 'such', 'dir', 'x.bin'), '--image-version', '1.0.0']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /the directory .*no\/such\/dir does not exist/);
  });
});

describe('cli: exit codes and messages', () => {
  it('image upload whose device answers match: false exits 1 with the error (a relay corrupts the data in transit)', async () => {
    const { path } = await imageFile('match.bin', '5.0.0', 6000);
    // A UDP relay that flips the last byte (a data byte) of every image upload request.
    const relay = dgram.createSocket('udp4');
    const toDevice = dgram.createSocket('udp4');
    let client: { port: number; address: string } | undefined;
    relay.on('message', (msg, from) => {
      client = { port: from.port, address: from.address };
      const group = msg.readUInt16BE(4);
      if ((msg[0]! & 7) === 2 && group === 1 && msg[7] === 1 && msg.length > 64) msg[msg.length - 1] = msg[msg.length - 1]! ^ 0xff;
      toDevice.send(msg, serve.port, '127.0.0.1');
    });
    toDevice.on('message', (msg) => client && relay.send(msg, client.port, client.address));
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
    try {
      const r = await runCli(['--udp', `127.0.0.1:${relay.address().port}`, 'image', 'upload', path]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^Error: the device reports that the uploaded image does not match the SHA-256 of .*match\.bin \(match: false\)\n$/);
      const j = await runCli(['--udp', `127.0.0.1:${relay.address().port}`, '--json', 'image', 'upload', path]);
      assert.equal(j.code, 1);
      assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, 'VERIFY_FAILED');
    } finally {
      relay.close();
      toDevice.close();
    }
  });

  it('fs download to a directory or into a missing directory: usage error (exit 2), nothing left behind', async () => {
    const at = ['--udp', `127.0.0.1:${serve.port}`];
    const local = join(tmp.path, 'fs-up.txt');
    await writeFile(local, 'hello file');
    assert.equal((await runCli([...at, 'fs', 'upload', local, '/lfs/hello.txt'])).code, 0);
    const dir = join(tmp.path, 'downloads');
    await mkdir(dir);
    for (const target of [dir, join(tmp.path, 'missing', 'dir', 'f.txt')]) {
      const r = await runCli([...at, 'fs', 'download', '/lfs/hello.txt', target]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^Error: cannot write .*(is a directory|does not exist)/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    assert.deepEqual((await readdir(tmp.path)).filter((f) => f.includes('.part')), []);
    assert.deepEqual(await readdir(dir), []);
    const up = await runCli([...at, 'fs', 'upload', dir, '/lfs/x']);
    assert.equal(up.code, 2);
    assert.match(up.stderr, /cannot read .*downloads: is a directory/);
  });

  it("shell exec exits with the command's return code", async () => {
    const ok = await runCli(['--udp', `127.0.0.1:${serve.port}`, 'shell', 'exec', 'kernel', 'version']);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'shell', 'exec', 'no-such-command']);
    const ret = (JSON.parse(bad.stdout) as { ret: number }).ret;
    assert.notEqual(ret, 0);
    assert.equal(bad.code, ret > 0 && ret < 256 ? ret : 1);
  });

  it('nothing listening on a UDP port: answered at once, naming the address', async () => {
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const port = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    // A retry schedule of 5 tries of 10 minutes: only the refusal can end the command (a
    // timeout would say "no response from the device after 5 tries"), so no wall clock is needed.
    const r = await runCli(['--udp', `127.0.0.1:${port}`, '-t', '600', '-r', '5', 'echo', 'x']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr, `Error: nothing is listening on 127.0.0.1:${port} (the host answered: port unreachable)\n`);
  });

  it('a device that does not answer: the message says what was tried, where, and for how long', async () => {
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    try {
      const port = silent.address().port;
      const r = await runCli(['--udp', `127.0.0.1:${port}`, '-t', '0.2', '-r', '2', 'echo', 'x']);
      assert.equal(r.code, 3);
      assert.match(r.stderr, new RegExp(`^Error: no response from the device after 2 tries of 200 ms, then once more in SMP v1: nothing answered on udp 127\\.0\\.0\\.1:${port} in \\d+\\.\\d s \\(-t sets the wait per try, -r the tries\\)\\n$`));
    } finally {
      silent.close();
    }
  });
});

describe('cli: long transfers', () => {
  it('-t and -r bound a transfer too: a device that stops answering mid-upload fails after -r tries waiting up to -t, and the message says so', async () => {
    const { path } = await imageFile('stall.bin', '6.1.0', 200 * 1024);
    for (const tries of [2, 4]) {
      // A relay that passes the device's answers until the upload is under way, then drops them all.
      let stalled = false;
      const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: serve.port }, toClient: { dropWhen: () => stalled } });
      try {
        const child = spawn(CLI, ['--udp', `127.0.0.1:${relay.port}`, '-t', '0.3', '-r', String(tries), 'image', 'upload', path, '-w', '1'], {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, MCUMGR_PROGRESS_INTERVAL_MS: '50' },
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          // Past the first chunk (which has its own erase allowance): 8 KiB acknowledged.
          if ([...stderr.matchAll(/(?:^|\n)([\d.]+) KiB \//g)].some((m) => Number(m[1]) >= 8)) stalled = true;
        });
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        assert.ok(stalled, stderr);
        assert.equal(code, 3, stderr);
        const m = new RegExp(`\nError: no response from the device after (\\d+) tries from (\\d+) ms up to 300 ms: the device on udp 127\\.0\\.0\\.1:${relay.port} stopped answering \\(-t sets the wait per try, -r the tries\\)\n$`).exec(stderr);
        assert.ok(m, stderr);
        // The waits double from the first up to -t: together at least -r tries of -t.
        const sent = Number(m[1]);
        let waited = 0;
        for (let i = 0, w = Number(m[2]); i < sent; i++, w = Math.min(300, w * 2)) waited += Math.min(300, w);
        assert.ok(sent >= tries && waited >= tries * 300, `${sent} tries, ${waited} ms in all, for -r ${tries} -t 0.3`);
      } finally {
        await relay.close();
      }
    }
  });

  it('off a terminal, progress lines go to stderr at intervals; --json stays one document on stdout', async () => {
    const { path } = await imageFile('progress.bin', '6.0.0', 200 * 1024);
    const r = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'image', 'upload', path, '--chunk-size', '128', '-w', '1'], { env: { MCUMGR_PROGRESS_INTERVAL_MS: '100' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { match: boolean }).match, true);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 1, 'at least one progress line');
    for (const l of lines) assert.match(l, /^[\d.]+ (B|KiB|MiB) \/ [\d.]+ KiB \(\d+%, [\d.]+ (B|KiB|MiB)\/s\)$/);
  });

  it('Ctrl-C in a terminal restores the cursor and line wrap and says how to resume', async () => {
    const { path } = await imageFile('ctrl-c.bin', '7.0.0', 300 * 1024);
    const device = await startServeProcess(['--data', join(tmp.path, 'device-ctrl-c')]);
    try {
      // `script` gives the CLI a real terminal; a 0x03 byte typed into it is Ctrl-C.
      const command = `${CLI} --udp 127.0.0.1:${device.port} image upload ${path} --chunk-size 64 -w 1`;
      const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let screen = '';
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          screen += d.toString('latin1');
          // Past the first chunk (which a resume sends again): 8 KiB.
          if ([...screen.matchAll(/([\d.]+) KiB \//g)].some((m) => Number(m[1]) >= 8)) resolve();
        });
        void exited.then((code) => reject(new Error(`the upload ended (${code}) before Ctrl-C: ${screen}`)));
      });
      child.stdin.write('\x03');
      const code = await exited;
      assert.equal(code, 130, screen);
      assert.ok(screen.includes('\x1b[?25l'), 'the bar hid the cursor');
      const tail = screen.slice(screen.lastIndexOf('\x1b[?25l'));
      assert.ok(tail.includes('\x1b[?25h') && tail.includes('\x1b[?7h'), 'cursor shown and line wrap on again');
      assert.match(screen, /Interrupted after [\d.]+ KiB of [\d.]+ KiB; the device keeps [\d.]+ KiB; run the same command again to resume/);
      const resumed = await runCli(['--udp', `127.0.0.1:${device.port}`, '--json', 'image', 'upload', path]);
      assert.ok((JSON.parse(resumed.stdout) as { resumedAt: number }).resumedAt > 0, 'the same command resumes');
    } finally {
      await device.stop();
    }
  });
});

describe('cli: serve', () => {
  it('serve --help lists every option with its default, the data directory included', async () => {
    const r = await runCli(['serve', '--help'], { env: { MCUMGR_DATA: '' } });
    assert.equal(r.code, 0, r.stderr);
    const help = r.stdout.replace(/\s+/g, ' ');
    for (const [option, def] of [
      ['--data <dir>', /default \/.*\.mcumgr\/emulator/],
      ['--buf-size <bytes>', /default 2048/],
      ['--buf-count <n>', /default 4/],
      ['--mtu <bytes>', /default 1500, or --buf-size when larger/],
      ['--images <n>', /default 1/],
      ['--slot-size <bytes>', /default 1\.5 MiB/],
      ['--udp <host:port>', /default 127\.0\.0\.1:1337/],
    ] as const) {
      const at = help.indexOf(option);
      assert.ok(at >= 0, `${option} listed`);
      assert.match(help.slice(at, at + 260), def, option);
    }
  });

  it('a UDP port in use: says which and how to pick another (exit 2)', async () => {
    const r = await runCli(['serve', '--udp', `127.0.0.1:${serve.port}`, '--data', join(tmp.path, 'second')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`UDP port ${serve.port} on 127\\.0\\.0\\.1 is already in use .*--udp 127\\.0\\.0\\.1:PORT \\(npm start -- --udp 127\\.0\\.0\\.1:PORT\\), or --udp 127\\.0\\.0\\.1:0 for any free port`));
  });
});

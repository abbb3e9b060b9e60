/**
 * The CLI never misleads: exit codes and messages a CI pipeline can trust. Each test spawns
 * ./bin/mcumgr against a `mcumgr serve` process (or nothing) and checks what a user would see.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startServeProcess, tempDir } from './helpers.ts';

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

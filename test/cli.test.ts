/** The CLI as a user runs it: ./bin/mcumgr spawned as a process against `mcumgr serve`. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { runCli, startServeProcess, tempDir } from './helpers.ts';

let serve: Awaited<ReturnType<typeof startServeProcess>>;
let data: Awaited<ReturnType<typeof tempDir>>;

before(async () => {
  data = await tempDir();
  serve = await startServeProcess(['--data', data.path]);
});
after(async () => {
  await serve.stop();
  await data.remove();
});

test('cli: serve prints where it listens and how to talk to it', () => {
  assert.match(serve.output(), /mcumgr emulator listening on udp 127\.0\.0\.1:\d+ \(data: .*\)/);
  assert.match(serve.output(), /Try: {2}\.\/bin\/mcumgr --conntype udp --connstring 127\.0\.0\.1:\d+ echo hello/);
});

test('cli: Go mcumgr syntax works as pasted: --conntype udp --connstring HOST:PORT echo', async () => {
  const r = await runCli(['--conntype', 'udp', '--connstring', `127.0.0.1:${serve.port}`, 'echo', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello\n');
  const bracketed = await runCli(['--conntype=udp', `--connstring=[127.0.0.1]:${serve.port}`, 'echo', 'two', 'words']);
  assert.equal(bracketed.stdout, 'two words\n');
});

test('cli: global options anywhere, short --udp form, -t and -r', async () => {
  const r = await runCli(['echo', 'hi', '--udp', `127.0.0.1:${serve.port}`, '-t', '2', '-r2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hi\n');
});

test('cli: params, info and --json output', async () => {
  const p = await runCli(['--udp', `127.0.0.1:${serve.port}`, 'params']);
  assert.equal(p.stdout, 'buf_size=2048 buf_count=4\n');
  const j = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'info', 'a']);
  assert.equal(j.code, 0);
  assert.deepEqual(JSON.parse(j.stdout), { output: 'Zephyr mcumgr-emulator v4.3.0-mcumgr-ts 4.3.0 posix node native_sim Zephyr' });
  const v1 = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--smp-v1', 'info', 'sv']);
  assert.equal(v1.stdout, 'Zephyr 4.3.0\n');
});

test('cli: device errors by name on stderr with a non-zero exit code, and as JSON', async () => {
  const r = await runCli(['--udp', `127.0.0.1:${serve.port}`, 'info', 'q']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'Error: os: invalid format (err 0/2) [OS_MGMT_ERR_INVALID_FORMAT]\n');
  const j = await runCli(['--udp', `127.0.0.1:${serve.port}`, '--json', 'info', 'q']);
  assert.equal(j.code, 1);
  assert.deepEqual(JSON.parse(j.stdout).error, { code: 'DEVICE_ERROR', message: 'os: invalid format (err 0/2)', name: 'OS_MGMT_ERR_INVALID_FORMAT', rc: 2, group: 0 });
});

test('cli: timeout when no device answers: exit code 3 and a clear message', async () => {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  try {
    const r = await runCli(['--udp', `127.0.0.1:${port}`, '-t', '0.2', '-r', '2', 'echo', 'x']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^Error: no response from the device after 2 tries of 200 ms/);
  } finally {
    s.close();
  }
});

test('cli: usage errors: no connection, bad option values, unknown conntype', async () => {
  const none = await runCli(['echo', 'x'], { env: { MCUMGR_CONNTYPE: '', MCUMGR_CONNSTRING: '' } });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no connection given/);
  const badT = await runCli(['--udp', '127.0.0.1:1', '-t', 'abc', 'echo', 'x']);
  assert.equal(badT.code, 2);
  assert.match(badT.stderr, /--timeout must be a positive number/);
  const badType = await runCli(['--conntype', 'carrier-pigeon', '--connstring', 'x', 'echo', 'x']);
  assert.equal(badType.code, 2);
  assert.match(badType.stderr, /unsupported --conntype "carrier-pigeon"/);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
});

test('cli: reset, then the device answers again', async () => {
  const r = await runCli(['--udp', `127.0.0.1:${serve.port}`, 'reset']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Done\n');
  const e = await runCli(['--udp', `127.0.0.1:${serve.port}`, '-t', '0.5', '-r', '6', 'echo', 'again']);
  assert.equal(e.stdout, 'again\n');
});

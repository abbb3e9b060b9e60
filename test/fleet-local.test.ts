/**
 * Fleet operations without a server: the local store (files) and jobs run in the controller
 * process. Real emulated devices (one `mcumgr serve --devices N` process) on loopback UDP, the CLI
 * as processes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdir, writeFile } from 'node:fs/promises';
import { runCli, tempDir } from './helpers.ts';
import { spawnCli, startDevices, writeImage, type Devices } from './fleet-helpers.ts';

const N = 8;
const id = (i: number): string => `b${i + 1}`;

interface ReportRow {
  device: string;
  outcome: string;
  before?: string;
  after?: string;
  confirmed?: boolean;
  startedAt?: string;
}

describe('fleet in the local store: no server, no gateway', { timeout: 600_000 }, () => {
  let devices: Devices;
  let dir: { path: string; remove(): Promise<void> };
  let store: string;
  const fleet = (args: string[]): ReturnType<typeof runCli> => runCli(['fleet', ...args, '--fleet-dir', store]);
  const rows = async (rollout: string): Promise<ReportRow[]> => {
    const r = await fleet(['report', rollout, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { devices: ReportRow[] }).devices;
  };

  before(async () => {
    dir = await tempDir('mcumgr-fleet-local-');
    store = join(dir.path, 'store');
    devices = await startDevices(N);
    const csv = ['id,gateway,conntype,connstring,labels', ...devices.ports.map((p, i) => `${id(i)},,udp,127.0.0.1:${p},bench=1;row=${i % 2}`)];
    await writeFile(join(dir.path, 'bench.csv'), csv.join('\n'));
    const r = await fleet(['devices', 'import', join(dir.path, 'bench.csv')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported 8 devices/);
  });

  after(async () => {
    await devices?.close();
    await dir?.remove();
  });

  it('a rollout in 2 waves runs in-process: every selected device upgraded and confirmed, the others untouched; report, scan, info, stat', async () => {
    const image = await writeImage(join(dir.path, 'v2.bin'), '2.0.0', 21);
    const r = await fleet(['rollout', image, '--select', 'bench=1,row=0', '--waves', '25%,100%', '--parallel', '2', '--id', 'l1']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /rollout l1: completed/);
    const rep = await rows('l1');
    assert.deepEqual(rep.map((d) => d.device).sort(), ['b1', 'b3', 'b5', 'b7']);
    for (const d of rep) assert.deepEqual([d.outcome, d.before, d.after, d.confirmed], ['ok', '1.0.0', '2.0.0', true], d.device);
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: i % 2 === 0 ? '2.0.0' : '1.0.0', confirmed: true }, id(i));
    const scan = await fleet(['scan', '--json']);
    assert.equal(scan.code, 0, scan.stderr);
    const list = JSON.parse((await fleet(['devices', 'list', '--json'])).stdout) as { id: string; state?: { slots: { active: boolean; version: string }[] } }[];
    assert.deepEqual(
      list.map((d) => [d.id, d.state?.slots.find((s) => s.active)?.version]),
      list.map((d) => [d.id, Number(d.id.slice(1)) % 2 === 1 ? '2.0.0' : '1.0.0']),
    );
    // The scan keeps the app info; info and stat run on the selected devices.
    assert.match((JSON.parse((await fleet(['devices', 'list', '--json'])).stdout) as { state?: { appInfo?: string } }[])[0]!.state?.appInfo ?? '', /Zephyr/);
    const info = await fleet(['info', '--select', 'row=1', '--json']);
    assert.equal(info.code, 0, info.stderr);
    assert.deepEqual((JSON.parse(info.stdout) as { device: string; output: string }[]).map((r) => [r.device, /Zephyr/.test(r.output)]), ['b2', 'b4', 'b6', 'b8'].map((d) => [d, true]));
    const stat = await fleet(['stat', '--select', 'id=b1', '--json']);
    assert.equal(stat.code, 0, stat.stderr);
    assert.ok(Array.isArray((JSON.parse(stat.stdout) as { output: unknown }[])[0]!.output));
    // The store is plain files, each written whole (no temporary file left behind).
    assert.deepEqual((await readdir(join(store, 'rollouts', 'l1', 'devices'))).filter((f) => f.endsWith('.tmp')), []);
  });

  it('pause from another process stops the dispatch; resume finishes; --test-only leaves the image in test, a confirmed rollout of the same image confirms it', async () => {
    const image = await writeImage(join(dir.path, 'v3.bin'), '3.0.0', 22);
    const controller = spawnCli(['fleet', 'rollout', image, '--parallel', '1', '--test-only', '--id', 'l2', '--fleet-dir', store]);
    await controller.waitFor(/b\d: ok/);
    const p = await fleet(['rollout', 'pause', 'l2']);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(await controller.exited(), 0, controller.stderr());
    assert.match(controller.stdout(), /rollout l2: paused/);
    const mid = await rows('l2');
    assert.ok(mid.some((d) => d.outcome === 'not run'), 'paused before the end');
    const r = await fleet(['rollout', 'resume', 'l2']);
    assert.equal(r.code, 0, r.stderr);
    for (const d of await rows('l2')) assert.deepEqual([d.outcome, d.after, d.confirmed], ['ok', '3.0.0', false], d.device);
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: '3.0.0', confirmed: false }, id(i));
    // The same image again (named by its stored hash), confirmed: the devices running it in test confirm it, nothing is uploaded.
    const hash = (JSON.parse((await fleet(['images', 'list', '--json'])).stdout) as { hash: string; version: string }[]).find((i) => i.version === '3.0.0')!.hash;
    const c = await fleet(['rollout', hash.slice(0, 12), '--parallel', '4', '--id', 'l2c']);
    assert.equal(c.code, 0, c.stderr);
    for (const d of await rows('l2c')) assert.deepEqual([d.outcome, d.after, d.confirmed], ['ok', '3.0.0', true], d.device);
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: '3.0.0', confirmed: true }, id(i));
  });

  it('SIGKILL the controller mid-rollout: resume finishes it, devices done before the kill are not done again', async () => {
    const image = await writeImage(join(dir.path, 'v4.bin'), '4.0.0', 23);
    const controller = spawnCli(['fleet', 'rollout', image, '--parallel', '1', '--waves', '50%,100%', '--id', 'l3', '--fleet-dir', store]);
    await controller.waitFor(/b\d: ok 3\.0\.0 → 4\.0\.0/);
    await controller.kill('SIGKILL');
    const done = (await rows('l3')).filter((d) => d.outcome === 'ok');
    assert.ok(done.length >= 1 && done.length < N, `${done.length} done at the kill`);
    const r = await fleet(['rollout', 'resume', 'l3']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const d of done) assert.doesNotMatch(r.stderr, new RegExp(`^${d.device}: `, 'm'), `${d.device} was done again`);
    const rep = await rows('l3');
    for (const d of rep) assert.deepEqual([d.outcome, d.after, d.confirmed], ['ok', '4.0.0', true], d.device);
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: '4.0.0', confirmed: true }, id(i));
  });

  it('bad input in the local store: unknown device, non-MCUboot image, empty selector match: errors by code, nothing stored', async () => {
    const rm = await fleet(['devices', 'remove', 'ghost', '--json']);
    assert.equal((JSON.parse(rm.stdout) as { error: { code: string } }).error.code, 'FLEET_UNKNOWN_DEVICE');
    const junk = join(dir.path, 'junk.bin');
    await writeFile(junk, 'not an image at all');
    const before = (await readdir(join(store, 'rollouts'))).length;
    const bad = await fleet(['rollout', junk, '--json']);
    assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'FLEET_BAD_IMAGE');
    const none = await fleet(['rollout', join(dir.path, 'v2.bin'), '--select', 'row=9', '--json']);
    assert.equal((JSON.parse(none.stdout) as { error: { code: string } }).error.code, 'FLEET_NO_MATCH');
    assert.equal((await readdir(join(store, 'rollouts'))).length, before, 'no rollout was stored');
  });
});

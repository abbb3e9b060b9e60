/**
 * Fleet operations through NATS JetStream, all real: a nats-server (JetStream, file storage in a
 * temporary directory), emulated devices in one `mcumgr serve --devices N` process on loopback UDP
 * (test/fleet-helpers.ts startDevices), two `mcumgr gateway` processes and the `mcumgr fleet`
 * controller as processes. Time limits are hang guards only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { runCli, tempDir } from './helpers.ts';
import { NATS_SKIP, startNatsServer, type NatsServer } from './nats.ts';
import { spawnCli, startDevices, writeImage, type CliProcess, type Devices } from './fleet-helpers.ts';

const N = 50;
const id = (i: number): string => `d${String(i + 1).padStart(2, '0')}`;
const gatewayOf = (i: number): string => (i % 2 === 0 ? 'gw-a' : 'gw-b');

interface Report {
  rollout: { status: string; devices: number; ok: number; failed: number; failures: { device: string; error: string }[] };
  devices: { device: string; outcome: string; before?: string; after?: string; confirmed?: boolean; bytes?: number; durationMs?: number; retries?: number; gateway: string }[];
}

describe('fleet over NATS JetStream: real nats-server, gateway and controller processes', { skip: NATS_SKIP, timeout: 1_200_000 }, () => {
  let nats: NatsServer;
  let devices: Devices;
  let dir: { path: string; remove(): Promise<void> };
  const gateways = new Map<string, CliProcess>();
  const fleet = (args: string[]): ReturnType<typeof runCli> => runCli(['fleet', ...args, '--nats', nats.url], { timeoutMs: 600_000 });
  const startGateway = async (name: string): Promise<CliProcess> => {
    const gw = spawnCli(['gateway', '--nats', nats.url, '--name', name, '--parallel', '3', '--ack-wait', '2', '-t', '1', '-r', '5']);
    await gw.waitFor(new RegExp(`gateway ${name} ready`));
    gateways.set(name, gw);
    return gw;
  };
  const reportOf = async (rollout: string): Promise<Report> => {
    const r = await fleet(['report', rollout, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Report;
  };

  before(async () => {
    nats = await startNatsServer();
    dir = await tempDir('mcumgr-fleet-nats-');
    devices = await startDevices(N);
    const rows = ['id,gateway,conntype,connstring,labels', ...devices.ports.map((p, i) => `${id(i)},${gatewayOf(i)},udp,127.0.0.1:${p},site=lab;ring=${i < 6 ? 'early' : 'late'}`)];
    await writeFile(join(dir.path, 'fleet.csv'), rows.join('\n') + '\n');
    const imp = await fleet(['devices', 'import', join(dir.path, 'fleet.csv')]);
    assert.equal(imp.code, 0, imp.stderr);
    await startGateway('gw-a');
    await startGateway('gw-b');
  });

  after(async () => {
    for (const gw of gateways.values()) await gw.kill('SIGTERM');
    await devices?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it('a rollout in 3 waves through 2 gateways ends with every device on the new image, confirmed; the report is complete', async () => {
    const image = await writeImage(join(dir.path, 'v2.bin'), '2.0.0', 2);
    const added = await fleet(['images', 'add', image, '--json']);
    assert.equal(added.code, 0, added.stderr);
    const r = await fleet(['rollout', image, '--select', 'site=lab', '--waves', '10%,50%,100%', '--max-failures', '1', '--parallel', '6', '--id', 'r1']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const waves = [Math.ceil(N / 10), Math.ceil(N / 2) - Math.ceil(N / 10), N - Math.ceil(N / 2)];
    assert.match(r.stderr, new RegExp(`rollout r1: ${N} devices in 3 waves \\(${waves.join(', ')}\\)`));
    const rep = await reportOf('r1');
    assert.equal(rep.rollout.status, 'completed');
    assert.equal(rep.devices.length, N);
    for (const d of rep.devices) {
      assert.equal(d.outcome, 'ok', JSON.stringify(d));
      assert.equal(d.before, '1.0.0');
      assert.equal(d.after, '2.0.0');
      assert.equal(d.confirmed, true);
      assert.ok((d.bytes ?? 0) > 48 * 1024, `${d.device} bytes ${d.bytes}`);
      assert.equal(typeof d.durationMs, 'number');
      assert.equal(typeof d.retries, 'number');
    }
    assert.deepEqual(new Set(rep.devices.map((d) => d.gateway)), new Set(['gw-a', 'gw-b']));
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: '2.0.0', confirmed: true }, id(i));
    // The inventory knows it too.
    const list = await fleet(['devices', 'list', '--json']);
    for (const d of JSON.parse(list.stdout) as { id: string; state?: { slots: { active: boolean; version: string; confirmed: boolean }[] } }[]) {
      const running = d.state?.slots.find((s) => s.active);
      assert.equal(running?.version, '2.0.0', d.id);
      assert.equal(running?.confirmed, true, d.id);
    }
    // Other jobs through the gateways: echo on the early ring, image list on all.
    const echo = await fleet(['echo', '--select', 'ring=early', '--text', 'hi', '--json']);
    assert.equal(echo.code, 0, echo.stderr);
    assert.deepEqual((JSON.parse(echo.stdout) as { device: string; output: string; gateway: string }[]).map((e) => [e.device, e.output, e.gateway]), [0, 1, 2, 3, 4, 5].map((i) => [id(i), 'hi', gatewayOf(i)]));
    const listed = await fleet(['image-list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    for (const e of JSON.parse(listed.stdout) as { output: { version: string; active: boolean }[] }[]) assert.equal(e.output.find((s) => s.active)?.version, '2.0.0');
    const status = await fleet(['status', 'r1', '--json']);
    const s = JSON.parse(status.stdout) as { waves: { devices: number; ok: number }[]; gateways: { gateway: string; ok: number }[] };
    assert.deepEqual(s.waves.map((w) => [w.devices, w.ok]), waves.map((n) => [n, n]));
    assert.deepEqual(s.gateways.map((g) => [g.gateway, g.ok]), [['gw-a', N / 2], ['gw-b', N / 2]]);
  });

  it('SIGKILL a gateway mid-rollout and restart it: the rollout finishes, every device upgraded once and confirmed', async () => {
    const image = await writeImage(join(dir.path, 'v3.bin'), '3.0.0', 3, 160 * 1024);
    const controller = spawnCli(['fleet', 'rollout', image, '--waves', '50%,100%', '--parallel', '6', '--id', 'r2', '--nats', nats.url]);
    // gw-a is killed while it is upgrading a device (its upload under way), then started again.
    await gateways.get('gw-a')!.waitFor(/start r2\.d\d+ d\d+/);
    await gateways.get('gw-a')!.kill('SIGKILL');
    await startGateway('gw-a');
    assert.equal(await controller.exited(), 0, controller.stderr());
    const rep = await reportOf('r2');
    assert.equal(rep.rollout.status, 'completed');
    for (const d of rep.devices) {
      assert.equal(d.outcome, 'ok', JSON.stringify(d));
      assert.equal(d.after, '3.0.0');
      assert.equal(d.confirmed, true);
    }
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: '3.0.0', confirmed: true }, id(i));
    // The job that was in flight ran again on the restarted gateway (a second delivery), and finished.
    assert.match(gateways.get('gw-a')!.stdout(), /start r2\.d\d+ d\d+ \(delivery [2-9]\)|redelivered, its result is already stored/);
  });

  it('SIGKILL the controller mid-rollout and start it again: it resumes, no device is done twice', async () => {
    const image = await writeImage(join(dir.path, 'v4.bin'), '4.0.0', 4);
    const args = ['fleet', 'rollout', image, '--waves', '25%,100%', '--parallel', '2', '--id', 'r3', '--nats', nats.url];
    const first = spawnCli(args);
    await first.waitFor(/d\d+: ok 3\.0\.0 → 4\.0\.0/);
    await first.kill('SIGKILL');
    const resumed = await fleet(['rollout', 'resume', 'r3']);
    assert.equal(resumed.code, 0, resumed.stderr + resumed.stdout);
    const rep = await reportOf('r3');
    assert.equal(rep.rollout.status, 'completed');
    for (const d of rep.devices) assert.equal(d.outcome, 'ok', JSON.stringify(d));
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: '4.0.0', confirmed: true }, id(i));
    // Each device's job completed exactly once across both gateways (none redone by the new controller).
    const done = [...gateways.values()].flatMap((g) => [...g.stdout().matchAll(/^done (r3\.d\d+) /gm)].map((m) => m[1]));
    assert.equal(done.length, N, done.join(' '));
    assert.equal(new Set(done).size, N);
  });

  it('restart nats-server (file storage) mid-rollout: controller and gateways carry on, the rollout finishes', async () => {
    const image = await writeImage(join(dir.path, 'v5.bin'), '5.0.0', 5);
    const controller = spawnCli(['fleet', 'rollout', image, '--waves', '50%,100%', '--parallel', '4', '--id', 'r4', '--nats', nats.url]);
    await controller.waitFor(/d\d+: ok 4\.0\.0 → 5\.0\.0/);
    await nats.restart();
    assert.equal(await controller.exited(), 0, controller.stderr());
    const rep = await reportOf('r4');
    assert.equal(rep.rollout.status, 'completed');
    for (const d of rep.devices) assert.equal(d.outcome, 'ok', JSON.stringify(d));
    for (let i = 0; i < N; i++) assert.deepEqual(await devices.running(i), { version: '5.0.0', confirmed: true }, id(i));
  });

  it('bad input: unknown device, non-MCUboot image, selector that matches nothing, gateway that never comes: clear errors, nothing half-done', async () => {
    const unknown = await fleet(['devices', 'remove', 'd01', 'nope', '--json']);
    assert.equal(unknown.code, 1);
    assert.equal((JSON.parse(unknown.stdout) as { error: { code: string } }).error.code, 'FLEET_UNKNOWN_DEVICE');
    assert.equal(((JSON.parse((await fleet(['devices', 'list', '--json'])).stdout) as unknown[]).length), N, 'd01 kept: all or nothing');
    const byId = await fleet(['rollout', join(dir.path, 'v2.bin'), '--select', 'id=d01|ghost']);
    assert.equal(byId.code, 1);
    assert.match(byId.stderr, /unknown device ghost/);

    const junk = join(dir.path, 'junk.bin');
    await writeFile(junk, new Uint8Array(4096).fill(7));
    const bad = await fleet(['images', 'add', junk, '--json']);
    assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'FLEET_BAD_IMAGE');
    const images = JSON.parse((await fleet(['images', 'list', '--json'])).stdout) as { name: string }[];
    assert.ok(!images.some((i) => i.name === 'junk.bin'));

    const none = await fleet(['rollout', join(dir.path, 'v2.bin'), '--select', 'site=mars', '--json']);
    assert.equal((JSON.parse(none.stdout) as { error: { code: string; message: string } }).error.code, 'FLEET_NO_MATCH');

    const ghost = await fleet(['devices', 'add', 'z01', '--udp', '127.0.0.1:9', '--gateway', 'gw-ghost', '--label', 'site=moon']);
    assert.equal(ghost.code, 0, ghost.stderr);
    const before = JSON.parse((await fleet(['status', '--json'])).stdout) as unknown[];
    const late = await fleet(['rollout', join(dir.path, 'v2.bin'), '--select', 'site=moon', '--gateway-timeout', '1']);
    assert.equal(late.code, 1);
    assert.match(late.stderr, /gateway gw-ghost did not come within 1 s.*nothing was sent/);
    assert.equal((JSON.parse((await fleet(['status', '--json'])).stdout) as unknown[]).length, before.length, 'no rollout was stored');
  });
});

describe('fleet over NATS: devices that revert', { skip: NATS_SKIP, timeout: 600_000 }, () => {
  it('a wave with reverting devices halts at the budget, names them, leaves the rest untouched; abort ends it for good', async () => {
    const nats = await startNatsServer();
    const dir = await tempDir('mcumgr-fleet-revert-');
    // r03 and r04 have serve's revert fault: a new image never confirms itself, MCUboot reverts it.
    const devices = await startDevices(8, { revert: [2, 3] });
    const gw = spawnCli(['gateway', '--nats', nats.url, '--name', 'gw', '--parallel', '1', '-t', '1', '-r', '5']);
    try {
      await gw.waitFor(/gateway gw ready/);
      const fleet = (args: string[]): ReturnType<typeof runCli> => runCli(['fleet', ...args, '--nats', nats.url]);
      await writeFile(join(dir.path, 'fleet.json'), JSON.stringify(devices.ports.map((p, i) => ({ id: `r0${i + 1}`, gateway: 'gw', connstring: `127.0.0.1:${p}`, labels: { kind: 'sensor' } }))));
      assert.equal((await fleet(['devices', 'import', join(dir.path, 'fleet.json')])).code, 0);
      const image = await writeImage(join(dir.path, 'v2.bin'), '2.0.0', 5);
      const r = await fleet(['rollout', image, '--select', 'kind=sensor', '--waves', '2,100%', '--max-failures', '1', '--parallel', '1', '--id', 'rv']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /rollout rv halted: wave 2 of 2: 2 failures exceed the budget of 1 .*r03 \(UPGRADE_REVERTED: .*running 1\.0\.0 instead of 2\.0\.0.*\), r04 \(UPGRADE_REVERTED/);
      const rep = JSON.parse((await fleet(['report', 'rv', '--json'])).stdout) as Report;
      assert.equal(rep.rollout.status, 'halted');
      assert.deepEqual(
        rep.devices.map((d) => [d.device, d.outcome]),
        [['r01', 'ok'], ['r02', 'ok'], ['r03', 'failed'], ['r04', 'failed'], ['r05', 'not run'], ['r06', 'not run'], ['r07', 'not run'], ['r08', 'not run']],
      );
      for (const i of [2, 3, 4, 5, 6, 7]) assert.equal((await devices.running(i)).version, '1.0.0', `r0${i + 1} untouched or reverted`);
      for (const i of [0, 1]) assert.deepEqual(await devices.running(i), { version: '2.0.0', confirmed: true });
      // Abort the halted rollout for good: it cannot be resumed after that.
      assert.equal((await fleet(['rollout', 'abort', 'rv'])).code, 0);
      assert.equal((JSON.parse((await fleet(['status', 'rv', '--json'])).stdout) as { status: string }).status, 'aborted');
      const again = await fleet(['rollout', 'resume', 'rv', '--json']);
      assert.equal((JSON.parse(again.stdout) as { error: { code: string; message: string } }).error.code, 'FLEET_ROLLOUT');
      for (const i of [4, 5, 6, 7]) assert.equal((await devices.running(i)).version, '1.0.0');
    } finally {
      await gw.kill('SIGTERM');
      await devices.close();
      await nats.stop();
      await dir.remove();
    }
  });
});

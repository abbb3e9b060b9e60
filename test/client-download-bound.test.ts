/**
 * The client's `downloadFile` never allocates the length a device claims (issue 15). The device
 * here is the emulator on real UDP with its fs group replaced by one that lies: its first answer
 * claims a 4 GiB file, it serves real bytes up to REAL and nothing after. Asserted:
 * - collecting in memory, the claim is refused before a second request is sent;
 * - streaming into a sink, the bytes the client holds (answered by the device, not yet given to the
 *   sink) never exceed a few chunks, the sink gets the served prefix in order, and the transfer
 *   ends with an error naming the offset and the claim;
 * - `mcumgr fs download` (a process) streams into the file: it keeps the prefix that arrived and
 *   fails by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commands } from '../src/core/commands/index.ts';
import { Group } from '../src/core/commands/command.ts';
import { defineGroup, handle } from '../src/server/registry.ts';
import { createOsGroup } from '../src/server/groups/os.ts';
import { downloadFile } from '../src/client/fs-transfer.ts';
import { payload, runCli, startEmulator, type TestEmulator } from './helpers.ts';

const CLAIM = 0xffffffff;
const REAL = 256 * 1024;
const CHUNK = 1024;
const BUF_COUNT = 4;

interface LyingDevice {
  emu: TestEmulator;
  content: Uint8Array;
  /** Download requests answered. */
  requests: number;
  /** Bytes answered at distinct offsets (a retransmitted answer counts once). */
  served(): number;
}

/** The error for the lie: no data at an offset past the served bytes (one asked ahead may be named). */
function noDataPast(message: string): boolean {
  const m = new RegExp(`/lfs/huge: the device returned no data at offset (\\d+) of ${CLAIM}`).exec(message);
  return m !== null && Number(m[1]) >= REAL;
}

async function startLyingDevice(): Promise<LyingDevice> {
  const content = payload(REAL, 15);
  const answered = new Map<number, number>();
  const device: Omit<LyingDevice, 'emu'> = {
    content,
    requests: 0,
    served: () => [...answered.values()].reduce((a, b) => a + b, 0),
  };
  const emu = await startEmulator({
    bufSize: 2048,
    bufCount: BUF_COUNT,
    groups: [
      createOsGroup,
      () =>
        defineGroup(Group.FS, 'fs mgmt (lying about the length)', [
          handle(commands.fs.download, ({ body }) => {
            device.requests++;
            const data = content.slice(Math.min(REAL, body.off), Math.min(REAL, body.off + CHUNK));
            answered.set(body.off, data.length);
            return body.off === 0 ? { off: 0, data, len: CLAIM } : { off: body.off, data };
          }),
        ]),
    ],
  });
  return Object.assign(device, { emu });
}

test('download bound: a device claiming a 4 GiB file gets no 4 GiB allocation; collecting in memory is refused after the first answer', async (t) => {
  const device = await startLyingDevice();
  t.after(() => device.emu.close());
  const client = await device.emu.client();
  await assert.rejects(downloadFile(client, '/lfs/huge', { verify: false }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'USAGE');
    assert.match(e.message, /\/lfs\/huge: the device reports 4294967295 bytes, more than the 67108864 collected in memory/);
    return true;
  });
  assert.equal(device.requests, 1, 'nothing asked after the claim');
});

test('download bound: streamed into a sink, the client holds at most a window of chunks; the served prefix arrives in order and the lie ends the transfer by name', async (t) => {
  const device = await startLyingDevice();
  t.after(() => device.emu.close());
  const client = await device.emu.client();
  const received: Uint8Array[] = [];
  let delivered = 0;
  let mostHeld = 0;
  let total: number | undefined;
  const sink = {
    start(claimed: number) {
      total = claimed;
    },
    write(d: Uint8Array) {
      received.push(d.slice());
      delivered += d.length;
      mostHeld = Math.max(mostHeld, device.served() - delivered);
    },
  };
  await assert.rejects(downloadFile(client, '/lfs/huge', { verify: false, sink }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'VERIFY_FAILED');
    assert.ok(noDataPast(e.message), e.message);
    return true;
  });
  assert.equal(total, CLAIM);
  assert.equal(delivered, REAL);
  assert.deepEqual(Buffer.concat(received), Buffer.from(device.content));
  // Answered but not yet delivered: at most the window (buf_count - 1) and the chunk being delivered.
  assert.ok(mostHeld <= BUF_COUNT * CHUNK, `the client held ${mostHeld} bytes of answers at once`);
});

test('download bound: mcumgr fs download (a process) streams the lying device into the file, keeps the prefix and fails by name', async (t) => {
  const device = await startLyingDevice();
  t.after(() => device.emu.close());
  const local = join(device.emu.dataDir, 'huge.bin');
  const r = await runCli(['--udp', `127.0.0.1:${device.emu.port}`, '-t', '2', 'fs', 'download', '--no-verify', '/lfs/huge', local], { timeoutMs: 60_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(noDataPast(r.stderr), r.stderr);
  assert.deepEqual(new Uint8Array(await readFile(local)), device.content);
});

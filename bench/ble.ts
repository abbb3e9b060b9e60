/**
 * Image upload over the emulated BLE GATT link (src/transport/ble/emulated.ts), the emulator in
 * process behind it, for ATT MTU 23, 247 and 498 at a 7.5 ms and a 30 ms connection interval with
 * N link-layer packets per connection event (Data Length Extension: 251-byte LL payloads).
 *
 * The limit beside each figure is the link's theoretical SMP payload rate toward the device:
 * N packets per event, each carrying as much of a Write Command's value as fits,
 * (MTU − 3) / ⌈(MTU + 4) / 251⌉ bytes (ATT header 3, L2CAP header 4), per connection interval.
 * The upload figure counts image bytes, so the SMP header and CBOR around every chunk and the
 * short last piece of every packet are what separate it from the limit. The device reports
 * buf_size 2475 (five 495-byte values: what nRF Connect SDK configures for MTU 498) and buf_count
 * 4 (three packets in flight); the transport rounds packets down to whole writes. The one-in-flight
 * upload is shown beside the windowed one. BLE_MTUS=247 and BLE_PACKETS_PER_EVENT=6 pick other cases.
 */
import { createEmulator } from '../src/server/emulator.ts';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { buildImage } from '../src/image/build.ts';
import { createEmulatedGatt, openBleTransport, maxValueLength } from '../src/transport/ble/index.ts';
import { payload, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

const BUF_SIZE = 2475;
const BUF_COUNT = 4;
const PACKETS_PER_EVENT = Number(process.env['BLE_PACKETS_PER_EVENT'] ?? 4);

/** SMP bytes per second toward the device when every link-layer packet is full. */
export function smpPayloadLimit(attMtu: number, intervalMs: number, packetsPerEvent: number, llPayload = 251): number {
  const perLl = maxValueLength(attMtu) / Math.ceil((attMtu + 4) / llPayload);
  return (packetsPerEvent * perLl) / (intervalMs / 1000);
}

async function uploadOnce(attMtu: number, intervalMs: number, size: number, maxWindow: number | undefined): Promise<number> {
  const dir = await tempDir('mcumgr-bench-ble-');
  const gatt = createEmulatedGatt({ attMtu, bufSize: BUF_SIZE, pacing: { connectionIntervalMs: intervalMs, packetsPerEvent: PACKETS_PER_EVENT } });
  const server = await createEmulator({ dataDir: dir.path, bufSize: BUF_SIZE, bufCount: BUF_COUNT, transports: [gatt.server] });
  const transport = await openBleTransport(gatt.connect);
  const client = new SmpClient(transport, { timeoutMs: 10_000, tries: 1 });
  try {
    const image = (await buildImage({ payload: payload(size, attMtu + intervalMs), version: '1.0.0' })).bytes;
    // A chunk's timer runs while the packets before it are still on the air: give it the window's airtime, twice.
    const airtime = (BUF_SIZE * BUF_COUNT * 2000) / smpPayloadLimit(attMtu, intervalMs, PACKETS_PER_EVENT);
    const t0 = performance.now();
    const r = await uploadImage(client, image, { chunkTimeoutMs: Math.max(2000, airtime), ...(maxWindow ? { maxWindow } : {}) });
    const seconds = (performance.now() - t0) / 1000;
    if (r.match !== true) throw new Error('upload did not match');
    return image.length / seconds;
  } finally {
    await client.close();
    gatt.close();
    await server.close();
    await dir.remove();
  }
}

export async function benchBle(): Promise<void> {
  section(`BLE: image upload over the emulated GATT link (${PACKETS_PER_EVENT} LL packets per connection event, DLE, buf_size ${BUF_SIZE}, buf_count ${BUF_COUNT})`);
  for (const attMtu of (process.env['BLE_MTUS'] ?? '23,247,498').split(',').map(Number)) {
    for (const intervalMs of [7.5, 30]) {
      const limit = smpPayloadLimit(attMtu, intervalMs, PACKETS_PER_EVENT);
      // About two seconds of airtime per upload, at least 8 KiB.
      const size = Math.max(8 * 1024, Math.round((limit * 2) / 1024) * 1024);
      // The link runs on real timers: a busy machine fires them late and loses connection events.
      // The better of two runs is reported.
      const best = async (maxWindow: number | undefined): Promise<number> => Math.max(await uploadOnce(attMtu, intervalMs, size, maxWindow), await uploadOnce(attMtu, intervalMs, size, maxWindow));
      const windowed = await best(undefined);
      const single = await best(1);
      const label = `MTU ${attMtu}, ${intervalMs} ms, ${size / 1024} KiB`;
      printFigure({ name: `${label}, window ${BUF_COUNT - 1}`, value: windowed / 1000, unit: 'KB/s', limit: { value: limit / 1000, label: 'SMP payload limit' } });
      printFigure({ name: `${label}, 1 in flight`, value: single / 1000, unit: 'KB/s', limit: { value: windowed / 1000, label: 'windowed' } });
    }
  }
}

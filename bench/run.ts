/**
 * `npm run bench`: throughput and overhead figures, each beside its limit as a ratio.
 * Benchmarks print; they assert nothing. Run one with `npm run bench -- echo`.
 */
import { benchEcho } from './echo.ts';
import { benchCbor } from './cbor.ts';
import { benchImageUpload } from './image-upload.ts';
import { benchSerial } from './serial.ts';
import { benchLoad } from './load.ts';
import { benchStartup } from './startup.ts';
import { benchTransfer } from './transfer.ts';
import { benchBle } from './ble.ts';
import { benchDashboard } from './dashboard.ts';
import { benchDevices } from './devices.ts';
import { benchFleet } from './fleet.ts';

/** Every benchmark by name. Other modules add theirs here. */
export const BENCHMARKS: Record<string, () => Promise<void> | void> = {
  cbor: benchCbor,
  echo: benchEcho,
  'image-upload': benchImageUpload,
  serial: benchSerial,
  load: benchLoad,
  startup: benchStartup,
  transfer: benchTransfer,
  ble: benchBle,
  dashboard: benchDashboard,
  devices: benchDevices,
  fleet: benchFleet,
};

const only = process.argv.slice(2);
process.stdout.write(`mcumgr benchmarks on ${(await import('node:os')).cpus().length} cores, Node ${process.version}\n`);
for (const [name, run] of Object.entries(BENCHMARKS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  await run();
}

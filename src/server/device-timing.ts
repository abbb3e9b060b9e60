/**
 * How long a real device takes, so that a test against the emulator predicts the behaviour
 * against hardware: processing time per request, flash write and erase time (applied by the
 * slot files, src/server/mcuboot/slot-file.ts), and when the management queue is busy (which
 * the serial transport's receive line buffers depend on, src/transport/serial-server.ts).
 *
 * Defaults, for a typical Zephyr device with internal flash (a Cortex-M4 at 64 MHz, nRF52840
 * class; figures from vendors' datasheets and measured uploads, not from Zephyr's sources, which
 * set none of them):
 * - processing: 300 µs per request (CBOR decode, handler, encode, on top of flash time);
 * - flash write: 2.5 µs per byte (400 kB/s: nRF52840 word writes run 41 µs max per 4 bytes, the
 *   typical figure is far below; STM32 parts with 64-bit writes are faster);
 * - flash erase: 25 ms per 4 KiB sector, charged for the image's length when an upload starts
 *   (img_mgmt erases what the announced `len` needs before taking the first chunk: the first
 *   chunk of a 1 MiB image then waits 6.4 s, as on a device).
 * `mcumgr serve --fast` turns all of it off (an instant device, for CI).
 */
import type { SmpServer } from './server.ts';

export interface FlashTiming {
  /** Time to program one byte, µs. */
  writeUsPerByte: number;
  /** Time to erase one sector, ms. */
  eraseMsPerSector: number;
  /** Erase sector size, bytes. */
  sectorSize: number;
}

export const DEFAULT_FLASH_TIMING: FlashTiming = { writeUsPerByte: 2.5, eraseMsPerSector: 25, sectorSize: 4096 };
export const DEFAULT_PROCESSING_US = 300;
/** Zephyr's CONFIG_UART_MCUMGR_RX_BUF_COUNT default: receive line buffers of the UART transport. */
export const ZEPHYR_RX_LINE_BUFFERS = 2;

/**
 * Sleeps for modelled durations with sub-millisecond accuracy on average: short costs accumulate
 * until they are worth a timer, and a timer's overshoot is credited to the next cost.
 */
export class DelayClock {
  private debtMs = 0;

  async spend(ms: number): Promise<void> {
    if (!(ms > 0)) return;
    this.debtMs += ms;
    if (this.debtMs < 1) return;
    const want = this.debtMs;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, want));
    // Overshoot (timer granularity, a busy host) is paid back, up to 20 ms of credit.
    this.debtMs = Math.max(-20, want - (performance.now() - t0));
  }
}

/**
 * Whether the device's management queue is processing a request, with a signal when it stops and
 * one when a long request lets other transports' requests run ({@link SmpServer.onYield}).
 */
export class DeviceActivity {
  private depth = 0;
  private readonly idleListeners = new Set<() => void>();
  private readonly yieldListeners = new Set<() => void>();

  get busy(): boolean {
    return this.depth > 0;
  }

  begin(): void {
    this.depth++;
  }

  end(): void {
    if (this.depth === 0) return;
    if (--this.depth === 0) for (const l of [...this.idleListeners]) l();
  }

  /** Calls `listener` every time the queue becomes idle; returns a function that removes it. */
  onIdle(listener: () => void): () => void {
    this.idleListeners.add(listener);
    return () => this.idleListeners.delete(listener);
  }

  /** The request being processed lets other transports' waiting requests run now. */
  yielded(): void {
    for (const l of [...this.yieldListeners]) l();
  }

  /** Calls `listener` every time the request being processed lets others run; returns a function that removes it. */
  onYield(listener: () => void): () => void {
    this.yieldListeners.add(listener);
    return () => this.yieldListeners.delete(listener);
  }
}

export interface DeviceTimingOptions {
  /** Processing time per request, µs (default {@link DEFAULT_PROCESSING_US}; 0 for none). */
  processingUs?: number;
  /** Tracks when the device is busy (give the one the serial transport watches). */
  activity?: DeviceActivity;
}

/**
 * Makes `server` take `processingUs` per request and reports its busy time to `activity`
 * (through the cmd_recv and cmd_done hooks, so nothing in the dispatcher changes), and the
 * moments a long request lets others run.
 */
export function installDeviceTiming(server: SmpServer, options: DeviceTimingOptions = {}): DeviceActivity {
  const activity = options.activity ?? new DeviceActivity();
  const clock = new DelayClock();
  const ms = (options.processingUs ?? DEFAULT_PROCESSING_US) / 1000;
  server.hooks.on('cmd_recv', async (_data, control) => {
    // A request an earlier hook refused gets no cmd_done: it is not processed.
    if (control.previous !== undefined) return;
    activity.begin();
    await clock.spend(ms);
  });
  server.hooks.on('cmd_done', () => {
    activity.end();
  });
  server.onYield(() => activity.yielded());
  return activity;
}

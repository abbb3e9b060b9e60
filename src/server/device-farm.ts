/**
 * Many emulated devices in one process, for scale and failure tests (`mcumgr serve --devices N`):
 * device i listens on UDP `basePort + i` and keeps its state in `<dataDir>/<i>` (its own data
 * directory lock, MCUboot model, settings, file system). Devices share the process, its event loop
 * and the code, never state: each is a whole {@link createAgent} device, without the host network
 * watch (`net iface` shows nothing) and with sparse slot files (a new or erased slot writes
 * nothing, see mcuboot/slot-file.ts), so that a thousand of them start on a small machine.
 *
 * Every port of the range is bound before any device starts: a range partly in use fails whole,
 * and with `basePort` 0 another free range is picked. The data directory itself is locked too, so
 * a second farm (or a single `serve`) on it is refused.
 *
 * Faults ({@link FaultOptions}): a seeded, reproducible choice of devices misbehave, each in one
 * way ({@link DeviceFault}); {@link planFaults} tells which before anything starts.
 */
import { join } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { pool } from '../core/pool.ts';
import { createUdpServer, DEFAULT_UDP_MTU } from '../transport/udp.ts';
import type { ServerReceiveContext, ServerTransport, SmpPeer } from '../transport/types.ts';
import { createAgent, type Agent, type AgentOptions } from './agent.ts';
import { lockDataDir, type DataDirLock } from './data-lock.ts';
import { imageModelOf } from './groups/image.ts';

/**
 * How a misbehaving device misbehaves:
 * - `revert`: a new image never confirms itself (it fails right after booting): every boot that
 *   ran an image in test boots again at once, and MCUboot reverts to the previous image;
 * - `drop`: loses a fraction of its datagrams, each way ({@link FaultOptions.dropRate});
 * - `silent`: answers normally until the first image upload request reaches it, then nothing more
 *   (until the process restarts): a device that dies mid-rollout.
 */
export type DeviceFault = 'revert' | 'drop' | 'silent';
export const DEVICE_FAULTS: readonly DeviceFault[] = ['revert', 'drop', 'silent'];

/** What each fault kind does, in words (serve prints it beside the device list). */
export function describeFault(kind: DeviceFault, dropRate = DEFAULT_DROP_RATE): string {
  switch (kind) {
    case 'revert':
      return 'a new image never confirms itself: MCUboot reverts it at the next boot';
    case 'drop':
      return `loses ${+(dropRate * 100).toFixed(2)}% of datagrams each way`;
    case 'silent':
      return 'stops answering at its first image upload request';
  }
}

export const DEFAULT_DROP_RATE = 0.1;

export interface FaultOptions {
  /** Fraction of the devices that misbehave, 0..1 (rounded to a whole number of devices). */
  rate: number;
  /** Seed of the choice (and of the drop devices' losses): the same seed picks the same devices. */
  seed: number;
  /** The kinds dealt out in turn to the chosen devices (default all three, in {@link DEVICE_FAULTS} order). */
  kinds?: readonly DeviceFault[];
  /** Fraction of datagrams a `drop` device loses in each direction (default {@link DEFAULT_DROP_RATE}). */
  dropRate?: number;
}

/** Which devices misbehave and how. */
export interface FaultPlan {
  seed: number;
  rate: number;
  dropRate: number;
  /** Device index → its fault. */
  byDevice: ReadonlyMap<number, DeviceFault>;
  /** Device indices of each kind, ascending. */
  byKind: Readonly<Record<DeviceFault, readonly number[]>>;
}

/** A small seeded generator (mulberry32): reproducible, not for secrets. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Chooses `round(rate × count)` devices with a seeded shuffle and deals the kinds out to them in
 * turn (the first chosen reverts, the second drops, ...).
 */
export function planFaults(count: number, options: FaultOptions): FaultPlan {
  const kinds = options.kinds && options.kinds.length > 0 ? options.kinds : DEVICE_FAULTS;
  if (!(options.rate >= 0 && options.rate <= 1)) throw new RangeError(`fault rate must be 0..1, got ${options.rate}`);
  const dropRate = options.dropRate ?? DEFAULT_DROP_RATE;
  if (!(dropRate >= 0 && dropRate <= 1)) throw new RangeError(`drop rate must be 0..1, got ${dropRate}`);
  const random = seededRandom(options.seed);
  const order = Array.from({ length: count }, (_, i) => i);
  const chosen = Math.round(options.rate * count);
  for (let i = 0; i < chosen; i++) {
    const j = i + Math.floor(random() * (count - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const byDevice = new Map<number, DeviceFault>();
  const byKind: Record<DeviceFault, number[]> = { revert: [], drop: [], silent: [] };
  for (let i = 0; i < chosen; i++) {
    const kind = kinds[i % kinds.length]!;
    byDevice.set(order[i]!, kind);
    byKind[kind].push(order[i]!);
  }
  for (const k of DEVICE_FAULTS) byKind[k].sort((a, b) => a - b);
  return { seed: options.seed, rate: options.rate, dropRate, byDevice, byKind };
}

/** Per-device options: everything of {@link AgentOptions} but where it lives and what it listens on. */
export type FarmDeviceOptions = Omit<AgentOptions, 'dataDir' | 'udp' | 'serial' | 'ble' | 'transports' | 'closeOnDisconnect' | 'hostNetwork' | 'onStatus'>;

export interface DeviceFarmOptions {
  /** Number of devices, 1..65535. */
  count: number;
  /** The address every device listens on. */
  host: string;
  /** Port of device 0; device i listens on basePort + i. 0: any free range of `count` ports. */
  basePort: number;
  /** Device i keeps its state in `<dataDir>/<i>`. */
  dataDir: string;
  /** Largest UDP datagram accepted (default the larger of 1500 and `device.bufSize`). */
  mtu?: number;
  /** Options every device gets. */
  device?: FarmDeviceOptions;
  /** Options of device `index` over {@link device} (its event log, naming it). */
  perDevice?: (index: number) => FarmDeviceOptions;
  /** Misbehaving devices (absent: none). */
  faults?: FaultOptions;
  /** Devices started at once (default 8): start-up is mostly waiting for the disk. */
  concurrency?: number;
  /** Status lines, each naming its device. */
  onStatus?: (message: string) => void;
}

export interface FarmDevice {
  readonly index: number;
  readonly port: number;
  readonly dataDir: string;
  readonly agent: Agent;
  readonly fault: DeviceFault | undefined;
}

export interface DeviceFarm {
  readonly host: string;
  readonly basePort: number;
  readonly lastPort: number;
  readonly dataDir: string;
  readonly devices: readonly FarmDevice[];
  readonly faults: FaultPlan | undefined;
  /** Datagrams the `drop` and `silent` devices have swallowed so far. */
  readonly faultDrops: number;
  /** `udp HOST:BASE..LAST` */
  describe(): string;
  /** Closes every device (its stores, its socket) and releases the data directory. */
  close(): Promise<void>;
}

/** A UDP socket bound early, whose packets go to the device once it listens, through its fault. */
class FarmUdp implements ServerTransport {
  readonly kind = 'udp';
  private target: ((packet: Uint8Array, peer: SmpPeer) => unknown) | undefined;
  private silent = false;
  dropped = 0;

  constructor(
    readonly inner: ReturnType<typeof createUdpServer>,
    private readonly fault: DeviceFault | undefined,
    private readonly random: () => number,
    private readonly dropRate: number,
  ) {}

  /** Binds the socket; packets arriving before the device listens are lost, as before a boot. */
  async bind(): Promise<void> {
    let context: ServerReceiveContext | undefined;
    await this.inner.start((packet, peer) => this.receive(packet, peer), {
      freeBuffers: () => context?.freeBuffers() ?? 0,
      undecodable: (reason, peer, bytes) => context?.undecodable(reason, peer, bytes),
    });
    this.setContext = (c) => (context = c);
  }

  private setContext: (c: ServerReceiveContext | undefined) => void = () => {};

  private lose(): boolean {
    if (this.fault !== 'drop' || this.random() >= this.dropRate) return false;
    this.dropped++;
    return true;
  }

  private receive(packet: Uint8Array, peer: SmpPeer): unknown {
    if (this.fault === 'silent' && !this.silent && isImageUpload(packet)) this.silent = true;
    if (this.silent) {
      this.dropped++;
      return true;
    }
    if (!this.target || this.lose()) return false;
    if (this.fault !== 'drop') return this.target(packet, peer);
    const reply = (answer: Uint8Array): Promise<void> => (this.lose() ? Promise.resolve() : peer.reply(answer));
    return this.target(packet, { address: peer.address, transport: peer.transport, mtu: peer.mtu, reply });
  }

  start(onPacket: (packet: Uint8Array, peer: SmpPeer) => unknown, context?: ServerReceiveContext): Promise<void> {
    this.target = onPacket;
    this.setContext(context);
    return Promise.resolve();
  }

  describe(): string {
    return this.inner.describe();
  }

  close(): Promise<void> {
    this.target = undefined;
    return this.inner.close();
  }
}

/** An image upload request (group 1, command 1, write), SMP v1 or v2 header. */
function isImageUpload(packet: Uint8Array): boolean {
  return packet.length >= 8 && (packet[0]! & 0x07) === 2 && packet[4] === 0 && packet[5] === 1 && packet[7] === 1;
}

/** Binds `count` consecutive ports from `base`; on failure closes what it bound and rethrows. */
async function bindRange(transports: FarmUdp[]): Promise<void> {
  const bound: FarmUdp[] = [];
  try {
    for (const t of transports) {
      await t.bind();
      bound.push(t);
    }
  } catch (e) {
    await Promise.all(bound.map((t) => t.close()));
    throw e;
  }
}

function isAddressInUse(e: unknown): boolean {
  return (e as { cause?: NodeJS.ErrnoException } | undefined)?.cause?.code === 'EADDRINUSE';
}


/**
 * Starts `count` devices on consecutive UDP ports. Rejects with UsageError for a bad count or a
 * range past port 65535, and with the first device's error when one cannot start (then nothing
 * keeps running).
 */
export async function startDeviceFarm(options: DeviceFarmOptions): Promise<DeviceFarm> {
  const { count, host } = options;
  if (!Number.isInteger(count) || count < 1 || count > 65535) throw new UsageError(`the number of devices must be 1..65535, got ${count}`);
  if (!Number.isInteger(options.basePort) || options.basePort < 0 || options.basePort > 65535) throw new UsageError(`invalid base port ${options.basePort}`);
  if (options.basePort !== 0 && options.basePort + count - 1 > 65535) {
    throw new UsageError(`${count} devices from port ${options.basePort} need ports up to ${options.basePort + count - 1}, past 65535: give a lower base port`);
  }
  const plan = options.faults ? planFaults(count, options.faults) : undefined;
  const status = options.onStatus ?? (() => {});
  const device = options.device ?? {};
  const mtu = options.mtu ?? Math.max(DEFAULT_UDP_MTU, device.bufSize ?? 2048);
  const lock: DataDirLock = await lockDataDir(options.dataDir);
  let transports: FarmUdp[] = [];
  const make = (base: number): FarmUdp[] =>
    Array.from({ length: count }, (_, i) => {
      const seed = ((plan?.seed ?? 0) ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
      return new FarmUdp(createUdpServer({ host, port: base + i, mtu }), plan?.byDevice.get(i), seededRandom(seed), plan?.dropRate ?? 0);
    });
  const started: FarmDevice[] = [];
  try {
    if (options.basePort !== 0) {
      transports = make(options.basePort);
      await bindRange(transports);
    } else {
      // Any free range: random bases in the dynamic-ish range until one binds whole.
      const low = 20000;
      const high = 65535 - count + 1;
      if (high <= low) throw new UsageError(`${count} devices need a base port: give --udp HOST:PORT`);
      for (let attempt = 0; ; attempt++) {
        transports = make(low + Math.floor(Math.random() * (high - low)));
        try {
          await bindRange(transports);
          break;
        } catch (e) {
          if (!isAddressInUse(e) || attempt >= 50) throw e;
        }
      }
    }
    const basePort = transports[0]!.inner.port;
    const entries = transports.map((t, index) => ({ t, index }));
    await pool(entries, options.concurrency ?? 8, async ({ t, index }) => {
      const dataDir = join(options.dataDir, String(index));
      const say = (m: string): void => status(`device ${index}: ${m}`);
      const fault = plan?.byDevice.get(index);
      const agent = await createAgent({
        ...device,
        ...options.perDevice?.(index),
        dataDir,
        image: { ...device.image, sparseSlots: true },
        transports: [t],
        hostNetwork: false,
        onStatus: say,
      });
      started.push({ index, port: basePort + index, dataDir, agent, fault });
      if (fault === 'revert') await installRevert(agent, say);
    });
    started.sort((a, b) => a.index - b.index);
    let closing: Promise<void> | undefined;
    return {
      host,
      basePort,
      lastPort: basePort + count - 1,
      dataDir: options.dataDir,
      devices: started,
      faults: plan,
      get faultDrops() {
        return transports.reduce((n, t) => n + t.dropped, 0);
      },
      describe() {
        const h = host.includes(':') ? `[${host}]` : host;
        return `udp ${h}:${basePort}..${basePort + count - 1}`;
      },
      close() {
        closing ??= (async () => {
          await pool(started, 32, (d) => d.agent.close());
          await lock.release();
        })();
        return closing;
      },
    };
  } catch (e) {
    await pool(started, 32, (d) => d.agent.close()).catch(() => {});
    await Promise.all(transports.map((t) => t.close()));
    await lock.release();
    throw e;
  }
}

/**
 * The `revert` fault: after a boot that ran an image in test (MCUboot swapped it in), the image
 * fails before it could confirm itself, the device boots again and MCUboot swaps the previous
 * image back. At power-on too (a process restarted with a test pending).
 */
async function installRevert(agent: Agent, status: (m: string) => void): Promise<void> {
  const model = imageModelOf(agent.server);
  if (!model) return;
  const crash = async (): Promise<void> => {
    const tested = model.bootReport?.images.filter((r) => r.performed === 'test') ?? [];
    if (tested.length === 0) return;
    status(`image ${tested.map((r) => `${r.image} ${r.version ?? '?'}`).join(', ')} in test fails before confirming itself: booting again (MCUboot reverts)`);
    await model.boot();
  };
  agent.server.onBoot(crash);
  await crash();
}

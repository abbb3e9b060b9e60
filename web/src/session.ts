/**
 * One device in the page: its link (bridge, Web Serial, Web Bluetooth), the SMP client on top, the
 * SMP log, the operations in flight with their deadlines, and what the device said about itself
 * (params, info, bootloader, supported groups). Panels read it and re-render on change.
 */
import { SmpClient } from '../../src/client/client.ts';
import { commands } from '../../src/core/commands/index.ts';
import { Group } from '../../src/core/commands/command.ts';
import { DeviceError, McuMgrError, TransportError } from '../../src/core/errors.ts';
import { MgmtErr } from '../../src/core/error-codes.ts';
import { pool } from '../../src/core/pool.ts';
import type { Command } from '../../src/core/commands/command.ts';
import type { SmpTransport } from '../../src/transport/types.ts';
import { Emitter } from './emitter.ts';
import { explainError, type ExplainedError } from './error-help.ts';
import type { LogPacket } from './smp-log.ts';

export type LinkState = 'connecting' | 'online' | 'no answer' | 'closed' | 'failed';

export type LinkKind = 'bridge' | 'web-serial' | 'web-bluetooth';

export interface PendingOp {
  id: number;
  label: string;
  started: number;
  deadline: number;
  cancel(): void;
}

export interface DeviceFacts {
  params?: { buf_size: number; buf_count: number };
  info: Record<string, string>;
  bootloader?: string;
  mode?: number;
  noDowngrade?: boolean;
  /** Group ids the device supports (enumeration, or probing when it has no enum group). */
  groups?: number[];
  groupNames: Record<number, string>;
  handlers: Record<number, number>;
  /** How `groups` was learned. */
  groupsFrom?: 'enumeration' | 'probing';
}

/** Letters of os.info (os 0/7), as `uname` flags. */
export const INFO_FIELDS: Array<[string, string]> = [
  ['s', 'Kernel name'],
  ['n', 'Node name'],
  ['r', 'Kernel release'],
  ['v', 'Kernel version'],
  ['b', 'Build date'],
  ['m', 'Machine'],
  ['p', 'Processor'],
  ['i', 'Hardware platform'],
  ['o', 'Operating system'],
];

const MAX_LOG = 5000;

/**
 * A User Timing mark (`dashboard:NAME`) of the first device's connection: `npm run bench --
 * dashboard` reads them to say where the time to the first render goes.
 */
function mark(name: string): void {
  if (typeof performance !== 'undefined' && typeof performance.mark === 'function' && performance.getEntriesByName(`dashboard:${name}`).length === 0) performance.mark(`dashboard:${name}`);
}
const DEFAULT_TIMEOUT_MS = 3000;
const DEFAULT_TRIES = 2;
let nextSessionId = 1;
let nextOpId = 1;

export class DeviceSession extends Emitter {
  readonly id = nextSessionId++;
  readonly label: string;
  readonly kind: LinkKind;
  state: LinkState = 'connecting';
  /** The error that ended or failed the link. */
  linkError: ExplainedError | undefined;
  /** The last error of an operation, for the error banner. */
  lastError: (ExplainedError & { op: string; time: number }) | undefined;
  client: SmpClient | undefined;
  transport: SmpTransport | undefined;
  facts: DeviceFacts = { info: {}, groupNames: {}, handlers: {} };
  readonly log: LogPacket[] = [];
  logCount = 0;
  /** Tells the log view about new packets (at most every 250 ms). */
  readonly logChanges = new Emitter(250);
  readonly pending = new Map<number, PendingOp>();
  /** Per-request timeout and tries of the client. */
  timeoutMs = DEFAULT_TIMEOUT_MS;
  /** True while {@link discover} runs (facts still arriving). */
  discovering = false;
  tries = DEFAULT_TRIES;
  private readonly open: () => Promise<SmpTransport>;

  constructor(label: string, kind: LinkKind, open: () => Promise<SmpTransport>) {
    super();
    this.label = label;
    this.kind = kind;
    this.open = open;
  }

  /** Opens the link and reads what the device says about itself. */
  async connect(): Promise<void> {
    this.state = 'connecting';
    this.linkError = undefined;
    this.changed();
    mark('link-opening');
    try {
      const transport = await this.open();
      mark('link-open');
      this.transport = transport;
      this.client = new SmpClient(transport, {
        timeoutMs: this.timeoutMs,
        tries: this.tries,
        onPacket: (dir, packet) => this.record(dir, packet),
      });
      transport.onClose((error) => {
        this.state = 'closed';
        this.linkError = error ? explainError(error) : undefined;
        this.changed();
      });
      await this.discover();
    } catch (e) {
      this.state = this.transport?.closed === false ? 'no answer' : 'failed';
      this.linkError = explainError(e);
      this.changed();
    }
  }

  private record(dir: 'tx' | 'rx', packet: Uint8Array): void {
    this.logCount++;
    this.log.push({ n: this.logCount, time: Date.now(), dir, packet: packet.slice() });
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
    // Only the log's own view follows, a few times a second: re-rendering the page per packet
    // would cost more than the packet's round trip (measured: 2.8 → 11 ms per echo in Chromium).
    this.logChanges.changed();
  }

  clearLog(): void {
    this.log.length = 0;
    this.logChanges.changed();
  }

  /**
   * Runs an operation with a visible deadline: it shows in the pending list with a countdown and
   * a Cancel button, and is aborted when the deadline passes. Errors are recorded (by name) and
   * rethrown.
   */
  async run<T>(label: string, fn: (signal: AbortSignal) => Promise<T>, timeoutMs = this.timeoutMs * this.tries + 500, quiet = false): Promise<T> {
    const id = nextOpId++;
    const controller = new AbortController();
    const started = Date.now();
    const timer = setTimeout(() => controller.abort(new TransportError('TRANSPORT_TIMEOUT', `${label}: no result within ${Math.round(timeoutMs / 100) / 10} s`)), timeoutMs);
    this.pending.set(id, { id, label, started, deadline: started + timeoutMs, cancel: () => controller.abort(new TransportError('TRANSPORT_ABORTED', `${label}: cancelled`)) });
    this.changed();
    try {
      const result = await Promise.race([
        fn(controller.signal),
        new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })),
      ]);
      if (this.state === 'no answer') this.state = 'online';
      return result;
    } catch (e) {
      const err = e instanceof TransportError && e.code === 'TRANSPORT_ABORTED' && controller.signal.reason instanceof McuMgrError ? controller.signal.reason : e;
      if (err instanceof TransportError && err.code === 'TRANSPORT_TIMEOUT' && this.state === 'online') this.state = 'no answer';
      if (!quiet || !(err instanceof DeviceError)) this.lastError = { ...explainError(err), op: label, time: Date.now() };
      throw err;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
      this.changed();
    }
  }

  /** One command of the table, as an operation with a deadline. */
  /** `quiet`: a device error is an expected answer (probing), not shown in the error banner. */
  request<Req, Rsp>(label: string, command: Command<Req, Rsp>, body: Req, options: { timeoutMs?: number; tries?: number; quiet?: boolean } = {}): Promise<Rsp> {
    const client = this.requireClient();
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const tries = options.tries ?? this.tries;
    return this.run(label, (signal) => client.request(command, body, { timeoutMs, tries, signal }), timeoutMs * tries + 500, options.quiet);
  }

  /** Awaits an operation whose error is already shown by name (the banner): undefined then. */
  async attempt<T>(p: Promise<T>): Promise<T | undefined> {
    try {
      return await p;
    } catch {
      return undefined;
    }
  }

  requireClient(): SmpClient {
    if (!this.client || this.state === 'closed' || this.state === 'failed') throw new TransportError('TRANSPORT_CLOSED', 'the device is not connected');
    return this.client;
  }

  dismissError(): void {
    this.lastError = undefined;
    this.changed();
  }

  /** Whether the device has the group: not yet while discovery has not learned the groups; every group when it could not. */
  supports(group: number): boolean {
    if (this.facts.groups === undefined) return !this.discovering;
    return this.facts.groups.includes(group);
  }

  /**
   * Reads params, the supported groups, info and bootloader, and shows each as it comes (the link
   * is online once the device answers). First, at once: params and the group enumeration (list
   * and details): the overview and the panel tabs need nothing else. Then the OS info letters and
   * the bootloader, as many at a time as the device has buffers for (`buf_count − 1`), each shown
   * when answered. Round trips to the overview: one; to the whole overview: one plus
   * ⌈11 / (buf_count − 1)⌉ (the device takes them back to back).
   */
  async discover(): Promise<void> {
    const facts: DeviceFacts = { info: {}, groupNames: {}, handlers: {} };
    this.facts = facts;
    this.discovering = true;
    const quiet = async <T>(p: Promise<T>): Promise<T | undefined> => {
      try {
        return await p;
      } catch (e) {
        if (e instanceof DeviceError) return undefined;
        throw e;
      }
    };
    const online = (): void => {
      if (this.state === 'connecting' || this.state === 'no answer') {
        this.state = 'online';
        mark('online');
        this.changed();
      }
    };
    try {
      const [params, list, details] = await Promise.all([
        quiet(this.request('Read MCUmgr parameters', commands.os.params, {}, { quiet: true })).then((r) => (online(), r)),
        quiet(this.request('Enumerate groups', commands.enum.list, {}, { quiet: true })).then((r) => (online(), r)),
        quiet(this.request('Read group details', commands.enum.details, {}, { quiet: true })),
      ]);
      if (params) facts.params = params;
      if (list) {
        facts.groups = [...list.groups].sort((a, b) => a - b);
        facts.groupsFrom = 'enumeration';
        for (const g of details?.groups ?? []) {
          if (g.name) facts.groupNames[g.group] = g.name;
          if (g.handlers !== undefined) facts.handlers[g.group] = g.handlers;
        }
      } else {
        facts.groups = await this.probeGroups();
        facts.groupsFrom = 'probing';
      }
      mark('groups');
      this.changed();

      // The rest, `buf_count − 1` at a time (a device drops what finds no free buffer), each shown as it comes.
      const reads: Array<() => Promise<unknown>> = [
        ...INFO_FIELDS.map(
          ([f]) =>
            () =>
              quiet(this.request(`Read OS info (${f})`, commands.os.info, { format: f }, { quiet: true })).then((r) => {
                if (r) facts.info[f] = r.output;
              }),
        ),
        () =>
          quiet(this.request('Read bootloader info', commands.os.bootloaderInfo, {}, { quiet: true })).then(async (bl) => {
            if (!bl?.bootloader) return;
            facts.bootloader = bl.bootloader;
            if (bl.bootloader !== 'MCUboot') return;
            const m = await quiet(this.request('Read MCUboot mode', commands.os.bootloaderInfo, { query: 'mode' }, { quiet: true }));
            if (m?.mode !== undefined) facts.mode = m.mode;
            if (m?.['no-downgrade'] !== undefined) facts.noDowngrade = m['no-downgrade'];
          }),
      ];
      await pool(reads, Math.max(1, (params?.buf_count ?? 4) - 1), async (read) => {
        await read();
        this.changed();
      });
      mark('overview');
    } finally {
      this.discovering = false;
      this.changed();
    }
  }

  /** Without the enumeration group: one harmless read per group; "not supported" means absent. */
  private async probeGroups(): Promise<number[]> {
    const probes: Array<[number, () => Promise<unknown>]> = [
      [Group.OS, () => this.request('Probe os', commands.os.echo, { d: '' }, { quiet: true })],
      [Group.IMAGE, () => this.request('Probe image', commands.image.state, {}, { quiet: true })],
      [Group.STAT, () => this.request('Probe stat', commands.stat.list, {}, { quiet: true })],
      [Group.SETTINGS, () => this.request('Probe settings', commands.settings.read, { name: 'mcumgr/probe' }, { quiet: true })],
      [Group.FS, () => this.request('Probe fs', commands.fs.status, { name: '/' }, { quiet: true })],
      [Group.SHELL, () => this.request('Probe shell', commands.shell.exec, { argv: ['help'] }, { quiet: true })],
    ];
    const out: number[] = [];
    for (const [group, probe] of probes) {
      try {
        await probe();
        out.push(group);
      } catch (e) {
        if (e instanceof DeviceError && e.group === undefined && e.rc === MgmtErr.ENOTSUP) continue;
        if (e instanceof DeviceError) out.push(group); // the group answered, with an error of its own
        else throw e;
      }
    }
    return out;
  }

  async reconnect(): Promise<void> {
    await this.close();
    await this.connect();
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) p.cancel();
    const c = this.client;
    this.client = undefined;
    await c?.close().catch(() => undefined);
    this.state = 'closed';
    this.changed();
  }
}

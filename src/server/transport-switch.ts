/**
 * Opens and closes one transport of a running server as a condition comes and goes: what
 * Zephyr's UDP transport does with CONFIG_MCUMGR_TRANSPORT_UDP_AUTOMATIC_INIT (smp_udp.c, read in
 * the source: a net_mgmt callback on NET_EVENT_L4_CONNECTED | NET_EVENT_L4_DISCONNECTED calls
 * smp_udp_open() on the first and smp_udp_close() on the second, and
 * net_conn_mgr_resend_status() at start replays the current state). `mcumgr serve
 * --close-on-disconnect` drives one with the availability of the bound address.
 *
 * {@link TransportSwitch.set} says what is wanted; the switch gets there one step at a time
 * (listen / unlisten never overlap) and always ends in the last state asked for. A failed open
 * (the address vanished again, the port is taken) is reported and retried after `retryMs` while
 * the transport is still wanted open.
 */
import type { ServerTransport } from '../transport/types.ts';
import type { SmpServer } from './server.ts';

export interface TransportSwitchOptions {
  /** Delay before retrying a failed open (default 1000 ms). */
  retryMs?: number;
  /** Called after the transport opened (true) or closed (false). */
  onChange?: (open: boolean) => void;
  /** Called when opening failed (it is retried) or closing failed. */
  onError?: (error: unknown) => void;
}

export class TransportSwitch {
  private wanted = false;
  private isOpen = false;
  private stopped = false;
  private busy: Promise<void> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private readonly retryMs: number;

  /** The transport starts closed; call {@link set} to open it. The switch stops when the server closes. */
  constructor(
    private readonly server: SmpServer,
    readonly transport: ServerTransport,
    private readonly options: TransportSwitchOptions = {},
  ) {
    this.retryMs = options.retryMs ?? 1000;
    server.onClose(() => this.stop());
  }

  /** Whether the transport is listening now. */
  get open(): boolean {
    return this.isOpen;
  }

  /** Asks for the transport open or closed; resolves once the switch has settled. */
  set(open: boolean): Promise<void> {
    this.wanted = open;
    return this.kick();
  }

  private kick(): Promise<void> {
    if (this.busy) return this.busy;
    if (this.stopped || this.wanted === this.isOpen) return Promise.resolve();
    this.busy = this.run();
    return this.busy;
  }

  /** Steps towards `wanted` until there; `busy` is cleared in the same turn as the final check. */
  private async run(): Promise<void> {
    for (;;) {
      if (this.wanted) {
        if (this.retry !== undefined) clearTimeout(this.retry);
        this.retry = undefined;
        try {
          await this.server.listen(this.transport);
          this.isOpen = true;
          this.notify(true);
        } catch (e) {
          this.report(e);
          if (!this.stopped) {
            this.retry = setTimeout(() => {
              this.retry = undefined;
              void this.kick();
            }, this.retryMs);
          }
          this.busy = undefined;
          return;
        }
      } else {
        try {
          await this.server.unlisten(this.transport);
        } catch (e) {
          // closing failed; the server no longer dispatches it either way
          this.report(e);
        }
        this.isOpen = false;
        this.notify(false);
      }
      if (this.stopped || this.wanted === this.isOpen) {
        this.busy = undefined;
        return;
      }
    }
  }

  private report(error: unknown): void {
    try {
      this.options.onError?.(error);
    } catch {
      // a failing listener must not stop the switch
    }
  }

  private notify(open: boolean): void {
    try {
      this.options.onChange?.(open);
    } catch {
      // a failing listener must not stop the switch
    }
  }

  /** Stops following `set`: no more opens or retries. The transport is left as it is (the server's close closes it). */
  stop(): void {
    this.stopped = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
  }
}

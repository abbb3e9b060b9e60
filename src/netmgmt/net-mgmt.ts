/**
 * The Network Management core (Zephyr's subsys/net/ip/net_mgmt.c): request handlers, event
 * callbacks, static handlers, the event queue and synchronous waits.
 *
 * Semantics kept from Zephyr (3.6/3.7-era net_mgmt.c, read in the source):
 * - `request(code, iface, data)` calls the one handler registered for `code` directly and returns
 *   what it returns (NET_MGMT_REGISTER_REQUEST_HANDLER + net_mgmt()).
 * - Notify prefilter: an event none of the registered masks can match (field-wise subset test on
 *   the OR of all masks) is dropped at the source, before queueing.
 * - Matching: layer and layer code exact, command as a bitmask (see {@link netMgmtEventMatches});
 *   the documented false positives happen, and handlers always receive the real event code.
 * - Order for one event: static handlers (by name), then dynamic callbacks newest first
 *   (net_mgmt_add_event_callback prepends).
 * - Queue mode (CONFIG_NET_MGMT_EVENT_QUEUE): a bounded FIFO delivered by one worker, so every
 *   listener sees event N before event N+1. A full queue drops the *new* event (k_msgq_put fails;
 *   JavaScript cannot block the notifier, so there is no put timeout). Byte info is copied at
 *   notify time as Zephyr copies it into the queue entry.
 * - Direct mode (CONFIG_NET_MGMT_EVENT_DIRECT): callbacks run inside notify; a notify from inside
 *   a callback is delivered depth-first.
 * - Waiters (net_mgmt_event_wait*): a one-shot callback with the sync bit, optionally bound to an
 *   iface, removed when it fires; events raised before the wait began are never replayed.
 *
 * Deliberate differences, for safety:
 * - Adding or removing callbacks (the running one included) during delivery is harmless: the
 *   listeners are snapshotted per event; a callback added during delivery is not called for that
 *   event (as in Zephyr), and one removed during delivery is not called afterwards (Zephyr may
 *   still call the removed *next* node, and its `prev` bookkeeping can corrupt the list).
 * - A handler that throws does not stop delivery; the error goes to `onHandlerError`.
 * - The queue size default is 5. The Kconfig default for 3.7 was not found in the source read
 *   (an older Kconfig.mgmt had 2; the reference notes 5, 16 with NET_MGMT_EVENT_MONITOR).
 */
import { UsageError } from '../core/errors.ts';
import {
  NET_MGMT_SYNC_EVENT_BIT,
  formatNetMgmtCode,
  isNetMgmtEvent,
  isNetMgmtOnIface,
  isNetMgmtCodeValue,
  toNetMgmtCode,
  netMgmtEventMatches,
  netMgmtGlobalMaskHandles,
} from './codes.ts';
import { NetMgmtError } from './errors.ts';
import type { NetIf } from './net-if.ts';

/** `net_mgmt_event_handler_t`: the callback receives its own structure, the real event code and the iface. */
export type NetMgmtEventHandler = (cb: NetMgmtEventCallback, event: number, iface: NetIf | null) => void;

/** `net_mgmt_event_static_handler_t`. */
export type NetMgmtStaticEventHandler = (event: number, iface: NetIf | null, info: unknown, infoLength: number, userData: unknown) => void;

/** `net_mgmt_request_handler_t`: gets the exact request code, the iface (or null) and the data. */
export type NetMgmtRequestHandler = (request: number, iface: NetIf | null, data: unknown) => unknown;

/** `struct net_mgmt_event_callback`. Create with {@link initEventCallback}. */
export interface NetMgmtEventCallback {
  handler: NetMgmtEventHandler;
  /**
   * The mask of events to be called for: layer and layer code exact, command as a mask. May be
   * changed at any time; as in Zephyr, the notify prefilter learns the change at the next add/del.
   */
  eventMask: number;
  /** Set before each call: the event's info (or undefined) and its length in bytes (or 0). */
  info: unknown;
  infoLength: number;
}

/**
 * `net_mgmt_init_event_callback()`. The mask may be given signed (the result of `A | B` in
 * JavaScript); it is stored unsigned. Throws {@link UsageError} for a mask that is not 32-bit.
 */
export function initEventCallback(handler: NetMgmtEventHandler, eventMask: number): NetMgmtEventCallback {
  const mask = toNetMgmtCode(eventMask, 'event mask');
  if (typeof handler !== 'function') throw new UsageError('event callback handler must be a function');
  return { handler, eventMask: mask, info: undefined, infoLength: 0 };
}

/** What an event wait resolves with. */
export interface NetMgmtEventWaitResult {
  /** The raised event (the real code, which may be a false positive of the mask). */
  event: number;
  /** The iface the event came from (null for events without one). */
  iface: NetIf | null;
  info: unknown;
  infoLength: number;
}

export interface NetMgmtEventWaitOptions {
  /** Milliseconds; undefined waits forever (K_FOREVER). 0 fails at once (Zephyr: K_NO_WAIT). */
  timeout?: number;
  signal?: AbortSignal;
}

export interface NetMgmtOptions {
  /** `queue` (default, CONFIG_NET_MGMT_EVENT_QUEUE) or `direct` (CONFIG_NET_MGMT_EVENT_DIRECT). */
  mode?: 'queue' | 'direct';
  /** CONFIG_NET_MGMT_EVENT_QUEUE_SIZE: events queued at once (1..1024, default 5). */
  queueSize?: number;
  /** Called when a handler throws (delivery goes on). */
  onHandlerError?: (error: unknown, event: number) => void;
  /** Called when an event is dropped because the queue is full. */
  onDrop?: (event: number, iface: NetIf | null) => void;
}

/** Counters, for tests and diagnostics. */
export interface NetMgmtStats {
  /** notify calls. */
  notified: number;
  /** Events dropped by the prefilter: no registered mask could match them. */
  unhandled: number;
  /** Events dropped because the queue was full. */
  dropped: number;
  /** Events delivered (run through the listeners). */
  delivered: number;
  /** Handler calls that threw. */
  handlerErrors: number;
}

interface QueuedEvent {
  event: number;
  iface: NetIf | null;
  info: unknown;
  infoLength: number;
}

interface StaticHandler {
  name: string;
  eventMask: number;
  handler: NetMgmtStaticEventHandler;
  userData: unknown;
}

interface SyncWaiter {
  iface: NetIf | null;
  fire: (result: NetMgmtEventWaitResult) => void;
}

/** Two iface references name the same interface (same object, or same index). */
export function sameIface(a: NetIf | null, b: NetIf | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return a.index === b.index;
}

function infoLengthOf(info: unknown, given: number | undefined): number {
  if (given !== undefined) return given;
  if (info instanceof Uint8Array) return info.byteLength;
  return 0;
}

/** One Network Management instance: what Zephyr keeps in globals. */
export class NetMgmt {
  readonly mode: 'queue' | 'direct';
  readonly queueSize: number;
  private readonly requestHandlers = new Map<number, NetMgmtRequestHandler>();
  private readonly staticHandlers: StaticHandler[] = [];
  /** Dynamic callbacks, newest first. */
  private callbacks: NetMgmtEventCallback[] = [];
  private readonly registered = new Set<NetMgmtEventCallback>();
  private readonly syncWaiters = new WeakMap<NetMgmtEventCallback, SyncWaiter>();
  private globalEventMask = 0;
  private readonly queue: QueuedEvent[] = [];
  private draining = false;
  private drainScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private readonly onHandlerError: ((error: unknown, event: number) => void) | undefined;
  private readonly onDrop: ((event: number, iface: NetIf | null) => void) | undefined;
  private readonly counters: NetMgmtStats = { notified: 0, unhandled: 0, dropped: 0, delivered: 0, handlerErrors: 0 };

  constructor(options: NetMgmtOptions = {}) {
    this.mode = options.mode ?? 'queue';
    if (this.mode !== 'queue' && this.mode !== 'direct') throw new UsageError(`net_mgmt mode must be 'queue' or 'direct'`);
    const size = options.queueSize ?? 5;
    if (!Number.isInteger(size) || size < 1 || size > 1024) throw new UsageError(`queueSize must be 1..1024, got ${String(size)}`);
    this.queueSize = size;
    this.onHandlerError = options.onHandlerError;
    this.onDrop = options.onDrop;
  }

  /** A copy of the counters. */
  get stats(): NetMgmtStats {
    return { ...this.counters };
  }

  /** Events waiting in the queue. */
  get pending(): number {
    return this.queue.length;
  }

  // --- Requests ------------------------------------------------------------------------------

  /**
   * NET_MGMT_REGISTER_REQUEST_HANDLER(code, handler). One handler per code; the code must be a
   * request (bit 31 clear). Throws {@link UsageError} otherwise or if the code is taken.
   */
  registerRequestHandler(code: number, handler: NetMgmtRequestHandler): void {
    const request = toNetMgmtCode(code, 'request code');
    if (isNetMgmtEvent(request)) throw new UsageError(`${formatNetMgmtCode(request)} is an event code (bit 31 set), not a request`);
    if (this.requestHandlers.has(request)) throw new UsageError(`a handler for request ${formatNetMgmtCode(request)} is already registered`);
    this.requestHandlers.set(request, handler);
  }

  /** Removes a request handler (Zephyr's are static; this is for tests and shutdown). */
  unregisterRequestHandler(request: number): boolean {
    return this.requestHandlers.delete(toNetMgmtCode(request, 'request code'));
  }

  /**
   * `net_mgmt(request, iface, data, len)`: calls the registered handler directly and returns its
   * result (a value or a Promise). Throws {@link NetMgmtError} `NETMGMT_NO_HANDLER` for an
   * unregistered code; whatever the handler throws propagates.
   */
  request<R = unknown>(code: number, iface: NetIf | null = null, data?: unknown): R {
    const request = toNetMgmtCode(code, 'request code');
    const handler = this.requestHandlers.get(request);
    if (!handler) throw new NetMgmtError('NETMGMT_NO_HANDLER', `no net_mgmt handler registered for request ${formatNetMgmtCode(request)}`);
    return handler(request, iface, data) as R;
  }

  // --- Event listeners -------------------------------------------------------------------------

  /**
   * NET_MGMT_REGISTER_EVENT_HANDLER(name, mask, handler, userData): a static handler, always
   * active, never removed, called before the dynamic callbacks, in name order.
   */
  registerEventHandler(name: string, mask: number, handler: NetMgmtStaticEventHandler, userData?: unknown): void {
    const eventMask = toNetMgmtCode(mask, 'event mask');
    if (this.staticHandlers.some((h) => h.name === name)) throw new UsageError(`a static event handler named ${JSON.stringify(name)} exists`);
    this.staticHandlers.push({ name, eventMask, handler, userData });
    this.staticHandlers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.globalEventMask = (this.globalEventMask | eventMask) >>> 0;
  }

  /** `net_mgmt_add_event_callback()`: prepends the callback. Adding a registered one is a no-op. */
  addEventCallback(cb: NetMgmtEventCallback): void {
    if (!cb || typeof cb.handler !== 'function' || !isNetMgmtCodeValue(cb.eventMask)) throw new UsageError('not an event callback (use initEventCallback)');
    if (this.registered.has(cb)) return;
    this.registered.add(cb);
    this.callbacks = [cb, ...this.callbacks];
    this.globalEventMask = (this.globalEventMask | cb.eventMask) >>> 0;
  }

  /** `net_mgmt_del_event_callback()`: removes the callback and rebuilds the global mask. */
  delEventCallback(cb: NetMgmtEventCallback): void {
    if (!this.registered.delete(cb)) return;
    this.callbacks = this.callbacks.filter((c) => c !== cb);
    this.rebuildGlobalMask();
  }

  private rebuildGlobalMask(): void {
    let m = 0;
    for (const h of this.staticHandlers) m |= h.eventMask;
    for (const c of this.callbacks) m |= c.eventMask >>> 0;
    this.globalEventMask = m >>> 0;
  }

  // --- Notify ----------------------------------------------------------------------------------

  /** `net_mgmt_event_notify(event, iface)`. */
  notify(event: number, iface: NetIf | null = null): void {
    this.notifyWithInfo(event, iface, undefined, 0);
  }

  /**
   * `net_mgmt_event_notify_with_info(event, iface, info, length)`. `info` is any value (an info
   * object from info.ts, or the C structure's bytes); `infoLength` defaults to the byte length
   * of a Uint8Array and 0 otherwise. Throws {@link UsageError} for a code that is not a uint32.
   */
  notifyWithInfo(code: number, iface: NetIf | null, info: unknown, infoLength?: number): void {
    const event = toNetMgmtCode(code, 'event code');
    this.counters.notified++;
    if (!netMgmtGlobalMaskHandles(event, this.globalEventMask)) {
      this.counters.unhandled++;
      return;
    }
    const length = infoLengthOf(info, infoLength);
    if (this.mode === 'direct') {
      this.deliver({ event, iface, info, infoLength: length });
      return;
    }
    if (this.queue.length >= this.queueSize) {
      this.counters.dropped++;
      this.onDrop?.(event, iface);
      return;
    }
    const copy = info instanceof Uint8Array ? info.slice() : info;
    this.queue.push({ event, iface, info: copy, infoLength: length });
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.draining || this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) this.deliver(next);
    } finally {
      this.draining = false;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once the queue is empty and no delivery is running. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && !this.draining && !this.drainScheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private callSafely(event: number, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.counters.handlerErrors++;
      try {
        this.onHandlerError?.(error, event);
      } catch {
        // a failing error hook must not stop delivery either
      }
    }
  }

  private deliver(e: QueuedEvent): void {
    this.counters.delivered++;
    for (const h of this.staticHandlers) {
      if (!netMgmtEventMatches(e.event, h.eventMask)) continue;
      this.callSafely(e.event, () => h.handler(e.event, e.iface, e.info, e.infoLength, h.userData));
    }
    const snapshot = this.callbacks;
    for (const cb of snapshot) {
      if (!this.registered.has(cb)) continue; // removed during this delivery
      if (!netMgmtEventMatches(e.event, cb.eventMask)) continue;
      const waiter = (cb.eventMask & NET_MGMT_SYNC_EVENT_BIT) !== 0 ? this.syncWaiters.get(cb) : undefined;
      if (waiter) {
        if (waiter.iface !== null && !sameIface(waiter.iface, e.iface)) continue;
        this.delEventCallback(cb);
        waiter.fire({ event: e.event, iface: e.iface, info: e.info, infoLength: e.infoLength });
        continue;
      }
      cb.info = e.infoLength > 0 || e.info !== undefined ? e.info : undefined;
      cb.infoLength = e.infoLength;
      this.callSafely(e.event, () => cb.handler(cb, e.event, e.iface));
    }
  }

  // --- Synchronous waits -----------------------------------------------------------------------

  /**
   * `net_mgmt_event_wait(mask, ...)`: resolves with the first matching event raised after the
   * call. Rejects with {@link NetMgmtError} `NETMGMT_TIMEOUT` or `NETMGMT_ABORTED`.
   */
  eventWait(eventMask: number, options: NetMgmtEventWaitOptions = {}): Promise<NetMgmtEventWaitResult> {
    return this.waitCall(null, eventMask, options);
  }

  /**
   * `net_mgmt_event_wait_on_iface(iface, mask, ...)`: as {@link eventWait} but only for events of
   * `iface`. The mask must have the iface bit and `iface` must be given ({@link UsageError}).
   */
  eventWaitOnIface(iface: NetIf, eventMask: number, options: NetMgmtEventWaitOptions = {}): Promise<NetMgmtEventWaitResult> {
    if (!isNetMgmtCodeValue(eventMask) || !isNetMgmtOnIface(eventMask)) {
      return Promise.reject(new UsageError(`eventWaitOnIface needs a mask with the iface bit (0x40000000), got ${String(eventMask)}`));
    }
    if (!iface) return Promise.reject(new UsageError('eventWaitOnIface needs an iface'));
    return this.waitCall(iface, eventMask, options);
  }

  private waitCall(iface: NetIf | null, mask: number, options: NetMgmtEventWaitOptions): Promise<NetMgmtEventWaitResult> {
    if (!isNetMgmtCodeValue(mask)) return Promise.reject(new UsageError(`event mask must be a 32-bit integer, got ${String(mask)}`));
    const eventMask = mask >>> 0;
    const { timeout, signal } = options;
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) {
      return Promise.reject(new UsageError(`timeout must be a number of milliseconds >= 0, got ${String(timeout)}`));
    }
    const maskText = formatNetMgmtCode(eventMask);
    if (signal?.aborted) {
      return Promise.reject(new NetMgmtError('NETMGMT_ABORTED', `wait for ${maskText} aborted`, { cause: signal.reason }));
    }
    if (timeout === 0) {
      return Promise.reject(new NetMgmtError('NETMGMT_TIMEOUT', `no event for ${maskText} (no wait)`));
    }
    return new Promise<NetMgmtEventWaitResult>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cb = initEventCallback(() => {}, (eventMask | NET_MGMT_SYNC_EVENT_BIT) >>> 0);
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.delEventCallback(cb);
      };
      const onAbort = (): void => {
        cleanup();
        reject(new NetMgmtError('NETMGMT_ABORTED', `wait for ${maskText} aborted`, { cause: signal?.reason }));
      };
      this.syncWaiters.set(cb, {
        iface,
        fire: (result) => {
          cleanup();
          resolve(result);
        },
      });
      this.addEventCallback(cb);
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new NetMgmtError('NETMGMT_TIMEOUT', `no event for ${maskText} within ${timeout} ms`));
        }, timeout);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

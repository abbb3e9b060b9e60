/**
 * MCUmgr notification hooks (smp-spec.md §6, Zephyr's `mgmt_callback_register`). Callbacks for an
 * event run in registration order. Each returns OK (undefined), or an error result: `{rc}` makes
 * the command fail with that SMP rc, `{group, rc}` with that group error. The first error wins;
 * later callbacks still run and see it as `previous`, unless a callback sets `abortMore`.
 */

export type HookResult = undefined | { rc: number } | { group: number; rc: number };

export interface HookEvents {
  /** Before a handler runs; an error result skips the command (e.g. rc 11 EACCESSDENIED). */
  cmd_recv: { group: number; id: number; op: number; peer: string };
  /** Progress of long commands (image upload: 0 start, 1 ongoing, 2 complete). */
  cmd_status: { group: number; id: number; status: number };
  /** After a command, with its result (0 or the rc / err it answered). */
  cmd_done: { group: number; id: number; rc: number; errGroup?: number };
  /** A reset request; an error result refuses it (the client may retry with force). */
  os_reset: { force: boolean; bootMode: number | undefined };
  /** OS info: claim custom format characters; add them to `claimed`. */
  os_info_check: { format: string; claimed: Set<string> };
  /** OS info: append custom output. */
  os_info_append: { format: string; output: string[] };
  os_datetime_get: Record<string, never>;
  os_datetime_set: { datetime: string };
  /** Bootloader info: answer extra queries by setting fields in `response`. */
  os_bootloader_info: { query: string | undefined; response: Record<string, unknown>; handled: boolean };
  img_dfu_chunk: { image: number; off: number; len: number; size: number };
  img_dfu_started: { image: number };
  img_dfu_stopped: { image: number };
  img_dfu_pending: { image: number };
  img_dfu_confirmed: { image: number; slot: number };
  img_slot_state: { image: number; slot: number; entry: Record<string, unknown> };
  /** File access: deny, or rewrite `path`. access: read | write | status | hash | close. */
  fs_file_access: { access: 'read' | 'write' | 'status' | 'hash' | 'close'; path: string };
  settings_access: { access: 'read' | 'write' | 'delete' | 'commit' | 'load' | 'save'; name: string | undefined; value: Uint8Array | undefined };
  enum_details: { group: number; entry: Record<string, unknown> };
  /** The device is about to reset (after the reset response went out). */
  reset: { bootMode: number | undefined };
}

export type HookEvent = keyof HookEvents;

export interface HookControl {
  /** The first error result of an earlier callback, if any. */
  previous: HookResult;
  /** Set to true to stop later callbacks from running. */
  abortMore: boolean;
}

export type HookCallback<E extends HookEvent> = (data: HookEvents[E], control: HookControl) => HookResult | void | Promise<HookResult | void>;

export class HookBus {
  private readonly callbacks = new Map<HookEvent, Array<HookCallback<HookEvent>>>();

  /** Registers a callback; returns a function that removes it. */
  on<E extends HookEvent>(event: E, callback: HookCallback<E>): () => void {
    const list = this.callbacks.get(event) ?? [];
    list.push(callback as unknown as HookCallback<HookEvent>);
    this.callbacks.set(event, list);
    return () => {
      const l = this.callbacks.get(event);
      const i = l?.indexOf(callback as unknown as HookCallback<HookEvent>) ?? -1;
      if (l && i >= 0) l.splice(i, 1);
    };
  }

  has(event: HookEvent): boolean {
    return (this.callbacks.get(event)?.length ?? 0) > 0;
  }

  /** Runs the callbacks of an event; resolves to the first error result, or undefined. */
  async notify<E extends HookEvent>(event: E, data: HookEvents[E]): Promise<HookResult> {
    const list = this.callbacks.get(event);
    if (!list || list.length === 0) return undefined;
    const control: HookControl = { previous: undefined, abortMore: false };
    for (const cb of [...list]) {
      const r = await cb(data, control);
      if (r && control.previous === undefined) control.previous = r;
      if (control.abortMore) break;
    }
    return control.previous;
  }
}

/**
 * SMP over Bluetooth LE GATT, the link below the SMP transport (portable: no Node built-ins).
 *
 * The wire, as Zephyr defines it (subsys/mgmt/mcumgr/transport/src/smp_bt.c, read 2026-12):
 * - Service 8D53DC1D-1DB7-4CD3-868B-8A527460AA84 with one characteristic
 *   DA2E7828-FBCE-4E01-AE9E-261174997C48 whose properties are write-without-response and notify
 *   only (plus its CCC descriptor): no read, no write with response.
 * - Requests are written without response in pieces of at most ATT MTU − 3 bytes; with
 *   CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY the device gathers them by the length in the 8-byte SMP
 *   header (smp_reassembly.c), without it every write must carry a whole packet.
 * - Responses are notifications of at most `bt_gatt_get_mtu(conn) - 3` bytes; the device waits for
 *   each notification to be sent before the next (smp_notify_finished).
 * - The CCC being written to 0 while a request is partly collected drops that partial request
 *   (smp_bt_ccc_changed); so does a disconnect.
 */

export const SMP_SERVICE_UUID = '8d53dc1d-1db7-4cd3-868b-8a527460aa84';
export const SMP_CHARACTERISTIC_UUID = 'da2e7828-fbce-4e01-ae9e-261174997c48';

/** ATT header of a Write Command or a Handle Value Notification: opcode (1) + handle (2). */
export const ATT_OVERHEAD = 3;
/** The smallest ATT MTU (Bluetooth Core, Vol 3 Part F 3.2.8): 20-byte values. */
export const ATT_MTU_MIN = 23;
/** The largest ATT MTU a stack may negotiate. */
export const ATT_MTU_MAX = 517;

/** Events a GATT connection reports to the SMP transport above it. */
export type GattLinkEvent =
  | { type: 'disconnected'; error?: Error }
  /** The central's subscription ended (CCC written 0, e.g. by the OS re-subscribing): partial responses are gone. */
  | { type: 'notifications-stopped' }
  /** The ATT MTU changed (an exchange after connecting). */
  | { type: 'mtu'; attMtu: number };

/**
 * One connection to the SMP characteristic of one peripheral: all the SMP transport needs from a
 * Bluetooth stack. Adapters: Web Bluetooth (browser), BlueZ over D-Bus (node-ble), noble (HCI),
 * and an emulated link for tests and benchmarks.
 */
export interface GattLink {
  /** The negotiated ATT MTU (23 when unknown). */
  readonly attMtu: number;
  /**
   * Largest value one write without response may carry, when the stack says so (Web Bluetooth
   * does not; BlueZ's AcquireWrite does; Windows reports 20). Default: `attMtu - 3`.
   */
  readonly maxWriteLength?: number;
  readonly connected: boolean;
  /** Peer address or id and advertised name, for messages. */
  readonly address?: string;
  readonly name?: string;
  /** A GATT Write Command. Resolves when the stack has taken the value (flow control). */
  writeWithoutResponse(value: Uint8Array): Promise<void>;
  /** Enables notifications (CCC = 1) and delivers each value, in order. */
  startNotifications(onValue: (value: Uint8Array) => void): Promise<void>;
  stopNotifications(): Promise<void>;
  /** Connection events; returns a function that removes the listener. */
  onEvent(listener: (event: GattLinkEvent) => void): () => void;
  disconnect(): Promise<void>;
}

/** Makes a new connection (the first one, or again after a disconnect). */
export type GattConnector = () => Promise<GattLink>;

/** The longest value a write or notification carries on a link. */
export function maxValueLength(attMtu: number, stackLimit?: number): number {
  const byMtu = Math.max(ATT_MTU_MIN, attMtu) - ATT_OVERHEAD;
  return stackLimit !== undefined && stackLimit > 0 ? Math.min(byMtu, stackLimit) : byMtu;
}

/** Normalises a UUID for comparison: lower case, dashes kept. */
export function sameUuid(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

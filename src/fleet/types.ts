/**
 * Fleet records: the inventory (devices and the gateway that reaches each), firmware images by
 * hash, rollouts and their per-device outcomes, and the jobs gateways run. The same records live in
 * the local store (files) and in NATS JetStream (key-value buckets, object store, streams).
 */
import { UsageError } from '../core/errors.ts';

/** One slot of a device as last seen (image state), kept small for the inventory. */
export interface SlotSummary {
  image: number;
  slot: number;
  version: string;
  hash: string;
  active: boolean;
  confirmed: boolean;
  pending: boolean;
}

export interface DeviceState {
  slots: SlotSummary[];
  /** ISO time of the last answer. */
  lastSeen: string;
  /** OS info (`os info a`), when the device answers it (scans read it). */
  appInfo?: string;
  /** The last error talking to it, by code, when the last try failed. */
  lastError?: { code: string; message: string };
}

export interface DeviceRecord {
  id: string;
  /** The gateway that reaches it (`local` when the controller reaches it itself). */
  gateway: string;
  /** Link type on that gateway (udp, serial, ble). */
  conntype: string;
  /** Connection string on that gateway, as `--connstring` takes it. */
  connstring: string;
  labels: Record<string, string>;
  state?: DeviceState;
}

export interface ImageRecord {
  /** The MCUboot image hash (SHA-256 TLV) in hex: what a device reports for the image. */
  hash: string;
  version: string;
  size: number;
  name: string;
  addedAt: string;
}

export type JobKind = 'upgrade' | 'list' | 'echo' | 'reset' | 'scan' | 'info' | 'stat' | 'shell' | 'fs-upload' | 'fs-download' | 'fs-stat';

export interface Job {
  /** Unique and stable: a job sent again (controller restart) carries the same id. */
  id: string;
  kind: JobKind;
  /** The rollout or scan the job belongs to: results are published under it. */
  group: string;
  device: string;
  gateway: string;
  conntype: string;
  connstring: string;
  /** upgrade: image hash in the store, and whether to confirm (false: test only). */
  image?: string;
  confirm?: boolean;
  /** echo: text; info: format (default `a`); stat: group name (none: the list of groups). */
  text?: string;
  /** shell: the command's words, sent as argv. */
  argv?: string[];
  /** fs-upload, fs-download, fs-stat: the file on the device. */
  path?: string;
  /** fs-upload: the SHA-256 (hex) of the content in the store's file area ({@link FleetStore.putFile}). */
  file?: string;
}

/** shell: what the command printed and returned (a non-zero `ret` fails the job). */
export interface ShellOutput {
  o: string;
  ret: number;
}

/**
 * fs-download: the file went into the store's file area under its SHA-256; fs-upload: what was
 * written. `verified` names the device hash the transfer was checked with (none when the device
 * has no fs hash).
 */
export interface FsOutput {
  path: string;
  size: number;
  sha256?: string;
  verified?: { type: string; value: string };
}

export type Outcome = 'ok' | 'failed';

export interface JobResult {
  jobId: string;
  group: string;
  device: string;
  gateway: string;
  outcome: Outcome;
  error?: { code: string; message: string; name?: string };
  before?: string;
  after?: string;
  confirmed?: boolean;
  startedAt: string;
  durationMs: number;
  bytes: number;
  /** Upload retransmissions plus extra deliveries of the job. */
  retries: number;
  attempt: number;
  /** The device's slots after the job (when it answered). */
  state?: DeviceState;
  /** Kind-specific output (echo text, ...). */
  output?: unknown;
}

export type RolloutStatus = 'running' | 'paused' | 'halted' | 'aborted' | 'completed';
export type Control = 'run' | 'pause' | 'abort';

export interface Budget {
  kind: 'count' | 'percent';
  value: number;
  /** Failures allowed over the rollout (more halts it). */
  allowed: number;
}

export interface Rollout {
  id: string;
  image: ImageRecord;
  selector: string;
  confirm: boolean;
  parallel: number;
  budget: Budget;
  waves: { percent: number; devices: string[] }[];
  status: RolloutStatus;
  /** The wave in progress (or the last one, when done). */
  wave: number;
  createdAt: string;
  updatedAt: string;
  /** When it halted or was aborted: why, with the failing devices by name. */
  reason?: string;
}

export type DeviceRunStatus = 'pending' | 'dispatched' | 'ok' | 'failed';

export interface RolloutDevice {
  device: string;
  gateway: string;
  wave: number;
  status: DeviceRunStatus;
  jobId?: string;
  result?: JobResult;
}

/** Device ids and gateway names are NATS subject tokens and file names: letters, digits, `-`, `_`. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function checkName(kind: string, name: string): string {
  if (!NAME_PATTERN.test(name)) throw new UsageError(`${kind} ${JSON.stringify(name)}: use 1-64 letters, digits, - or _`);
  return name;
}


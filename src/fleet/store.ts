/**
 * The fleet store: where inventory, images and rollouts live, and how jobs reach the devices. Two
 * implementations: {@link LocalStore} (files, jobs run in this process) and the NATS JetStream
 * store (key-value buckets, object store, a work-queue stream per gateway subject). The rollout
 * engine (engine.ts) and the CLI see only this interface.
 */
import type { Control, DeviceRecord, ImageRecord, Job, JobResult, Rollout, RolloutDevice } from './types.ts';

export interface JobExecutor {
  /**
   * Waits until each gateway named is up (NATS: its heartbeat is fresh); throws
   * FLEET_GATEWAY_TIMEOUT naming the ones that did not come in `timeoutMs`.
   */
  ensureGateways(names: readonly string[], timeoutMs: number): Promise<void>;
  /**
   * Runs a job and gives its result. Running the same job id again gives the result of the first
   * run when there is one (a restarted controller loses nothing and runs nothing twice).
   */
  run(job: Job, onProgress?: (stage: string, detail: string) => void): Promise<JobResult>;
  close(): Promise<void>;
}

export interface FleetStore {
  readonly kind: 'local' | 'nats';
  /** Where it is, for messages (a directory or a server URL). */
  readonly where: string;

  getDevice(id: string): Promise<DeviceRecord | undefined>;
  putDevice(device: DeviceRecord): Promise<void>;
  /** False when there was no such device. */
  deleteDevice(id: string): Promise<boolean>;
  listDevices(): Promise<DeviceRecord[]>;

  /** Stores a verified image's bytes under its hash (a no-op when it is there). */
  putImage(record: ImageRecord, bytes: Uint8Array): Promise<void>;
  getImageRecord(hash: string): Promise<ImageRecord | undefined>;
  getImageBytes(hash: string): Promise<Uint8Array | undefined>;
  listImages(): Promise<ImageRecord[]>;
  /** Stores any bytes (fs upload content, fs download results) under their SHA-256, returned in hex; a no-op when they are there. */
  putFile(bytes: Uint8Array): Promise<string>;
  getFileBytes(sha256: string): Promise<Uint8Array | undefined>;

  getRollout(id: string): Promise<Rollout | undefined>;
  putRollout(rollout: Rollout): Promise<void>;
  listRollouts(): Promise<Rollout[]>;
  getRolloutDevices(id: string): Promise<RolloutDevice[]>;
  putRolloutDevice(id: string, device: RolloutDevice): Promise<void>;
  /** Pause, resume and abort requests, kept apart from the state the controller writes. */
  getControl(id: string): Promise<Control>;
  setControl(id: string, control: Control): Promise<void>;

  /** How this store's jobs run (in-process, or through gateways). */
  executor(options: { parallel: number; openClient: OpenClient }): JobExecutor;
  close(): Promise<void>;
}

import type { SmpClient } from '../client/client.ts';
/** Opens a client on a device's link (the CLI's connection code with the device's conntype and connstring). */
export type OpenClient = (device: { conntype: string; connstring: string }) => Promise<SmpClient>;

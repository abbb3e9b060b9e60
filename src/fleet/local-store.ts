/**
 * The local fleet store: one directory (default `$XDG_DATA_HOME/mcumgr/fleet`, else
 * `~/.local/share/mcumgr/fleet`; `--fleet-dir` or MCUMGR_FLEET_DIR), one JSON file per record,
 * each written to a temporary file and renamed over the old one, so a killed controller leaves
 * every record whole and a new one resumes from them. Jobs run in this process.
 */
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { FleetStore, JobExecutor, OpenClient } from './store.ts';
import { fileBytesOf, imageBytesOf, runJob } from './jobs.ts';
import { localHash } from '../client/fs-transfer.ts';
import type { Control, DeviceRecord, ImageRecord, Job, JobResult, Rollout, RolloutDevice } from './types.ts';

export function defaultFleetDir(): string {
  const env = process.env['MCUMGR_FLEET_DIR'];
  if (env) return env;
  const base = process.env['XDG_DATA_HOME'] || join(homedir(), '.local', 'share');
  return join(base, 'mcumgr', 'fleet');
}

let tmpCounter = 0;

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${tmpCounter++}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Runs `io` on a path; undefined when the path does not exist (every other error is thrown). */
async function unlessMissing<T>(io: () => Promise<T>): Promise<T | undefined> {
  try {
    return await io();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  return unlessMissing(async () => JSON.parse(await readFile(path, 'utf8')) as T);
}

async function readBytes(path: string): Promise<Uint8Array | undefined> {
  return unlessMissing(async () => new Uint8Array(await readFile(path)));
}

async function listJson<T>(dir: string): Promise<T[]> {
  const names = (await unlessMissing(() => readdir(dir))) ?? [];
  const out: T[] = [];
  for (const n of names.filter((n) => n.endsWith('.json')).sort()) {
    const v = await readJson<T>(join(dir, n));
    if (v !== undefined) out.push(v);
  }
  return out;
}

export class LocalStore implements FleetStore {
  readonly kind = 'local' as const;
  readonly where: string;
  private constructor(private readonly dir: string) {
    this.where = dir;
  }

  static async open(dir = defaultFleetDir()): Promise<LocalStore> {
    for (const sub of ['devices', 'images', 'rollouts', 'files']) await mkdir(join(dir, sub), { recursive: true });
    return new LocalStore(dir);
  }

  private path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  getDevice(id: string): Promise<DeviceRecord | undefined> {
    return readJson(this.path('devices', `${id}.json`));
  }
  putDevice(device: DeviceRecord): Promise<void> {
    return writeAtomic(this.path('devices', `${device.id}.json`), JSON.stringify(device, null, 1));
  }
  async deleteDevice(id: string): Promise<boolean> {
    const had = (await this.getDevice(id)) !== undefined;
    await rm(this.path('devices', `${id}.json`), { force: true });
    return had;
  }
  listDevices(): Promise<DeviceRecord[]> {
    return listJson(this.path('devices'));
  }

  async putImage(record: ImageRecord, bytes: Uint8Array): Promise<void> {
    if ((await this.getImageRecord(record.hash)) !== undefined) return;
    await writeAtomic(this.path('images', `${record.hash}.bin`), bytes);
    await writeAtomic(this.path('images', `${record.hash}.json`), JSON.stringify(record, null, 1));
  }
  getImageRecord(hash: string): Promise<ImageRecord | undefined> {
    return readJson(this.path('images', `${hash}.json`));
  }
  getImageBytes(hash: string): Promise<Uint8Array | undefined> {
    return readBytes(this.path('images', `${hash}.bin`));
  }
  listImages(): Promise<ImageRecord[]> {
    return listJson(this.path('images'));
  }
  async putFile(bytes: Uint8Array): Promise<string> {
    const hash = localHash('sha256', bytes);
    const path = this.path('files', `${hash}.bin`);
    // Content-addressed: a file already stored under its hash is the same bytes.
    if ((await unlessMissing(() => stat(path))) === undefined) await writeAtomic(path, bytes);
    return hash;
  }
  getFileBytes(sha256: string): Promise<Uint8Array | undefined> {
    return readBytes(this.path('files', `${sha256}.bin`));
  }

  async getRollout(id: string): Promise<Rollout | undefined> {
    return readJson(this.path('rollouts', id, 'rollout.json'));
  }
  async putRollout(rollout: Rollout): Promise<void> {
    await mkdir(this.path('rollouts', rollout.id, 'devices'), { recursive: true });
    await writeAtomic(this.path('rollouts', rollout.id, 'rollout.json'), JSON.stringify(rollout, null, 1));
  }
  async listRollouts(): Promise<Rollout[]> {
    let names: string[];
    try {
      names = await readdir(this.path('rollouts'));
    } catch {
      return [];
    }
    const out: Rollout[] = [];
    for (const n of names.sort()) {
      const r = await this.getRollout(n);
      if (r) out.push(r);
    }
    return out;
  }
  getRolloutDevices(id: string): Promise<RolloutDevice[]> {
    return listJson(this.path('rollouts', id, 'devices'));
  }
  private readonly made = new Set<string>();
  async putRolloutDevice(id: string, device: RolloutDevice): Promise<void> {
    if (!this.made.has(id)) {
      await mkdir(this.path('rollouts', id, 'devices'), { recursive: true });
      this.made.add(id);
    }
    await writeAtomic(this.path('rollouts', id, 'devices', `${device.device}.json`), JSON.stringify(device));
  }
  async getControl(id: string): Promise<Control> {
    return (await readJson<{ control: Control }>(this.path('rollouts', id, 'control.json')))?.control ?? 'run';
  }
  setControl(id: string, control: Control): Promise<void> {
    return writeAtomic(this.path('rollouts', id, 'control.json'), JSON.stringify({ control }));
  }

  executor(options: { parallel: number; openClient: OpenClient }): JobExecutor {
    const imageBytes = imageBytesOf(this);
    return {
      // The local controller is its own gateway: every device is reached from here.
      ensureGateways: async () => {},
      run: (job: Job, onProgress?: (stage: string, detail: string) => void): Promise<JobResult> => runJob(job, { openClient: options.openClient, imageBytes, fileBytes: fileBytesOf(this), putFile: (b) => this.putFile(b) }, 1, onProgress),
      close: async () => {},
    };
  }

  async close(): Promise<void> {}
}

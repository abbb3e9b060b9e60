/**
 * The data directory lock: one emulated device per data directory. Two emulators writing the same
 * slots and settings log corrupt each other, so the second one is refused with an error that
 * names the holder.
 *
 * The lock is a file `<dataDir>/emulator.lock` created with O_EXCL, holding the owner's pid, its
 * start time (Linux: field 22 of /proc/PID/stat, so a recycled pid is not taken for the owner)
 * and host name. A lock whose owner is gone (killed with SIGKILL, crashed) is stale and taken
 * over: it is renamed to a private name first, so that of two processes taking over the same
 * stale lock exactly one succeeds, and a live lock renamed by mistake (its owner took over a
 * moment earlier) is put back. Released on close, only when the file is still ours.
 */
import { open, readFile, rename, unlink, link, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { McuMgrError } from '../core/errors.ts';

export const DATA_LOCK_FILE = 'emulator.lock';

interface LockOwner {
  pid: number;
  /** Process start time in clock ticks since boot (Linux), or undefined elsewhere. */
  start: number | undefined;
  host: string;
}

/** A held lock; {@link DataDirLock.release} gives it back. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Raised when another live process holds the data directory. */
export class DataDirLockedError extends McuMgrError {
  readonly holderPid: number;
  constructor(dataDir: string, holder: LockOwner) {
    super('DATA_DIR_LOCKED', `data directory ${dataDir} is in use by another emulator (pid ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ''}); stop it or give another --data directory`);
    this.name = 'DataDirLockedError';
    this.holderPid = holder.pid;
  }
}

/** Start time of a process (Linux /proc), to tell a live owner from a recycled pid. */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // cannot tell: assume it runs
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (owner.start !== undefined) {
    const start = processStart(owner.pid);
    if (start !== undefined && start !== owner.start) return false; // the pid was recycled
  }
  return true;
}

function encodeOwner(o: LockOwner): string {
  return `${JSON.stringify({ pid: o.pid, start: o.start ?? null, host: o.host })}\n`;
}

function decodeOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as { pid?: unknown; start?: unknown; host?: unknown };
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return undefined;
    return { pid: v.pid, start: typeof v.start === 'number' ? v.start : undefined, host: typeof v.host === 'string' ? v.host : hostname() };
  } catch {
    return undefined;
  }
}

const heldHere = new Set<string>();

/**
 * Takes the lock of a data directory (creating the directory). Throws {@link DataDirLockedError}
 * when a live process (this one included, for a second emulator in the same process) holds it.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, DATA_LOCK_FILE);
  const me: LockOwner = { pid: process.pid, start: processStart(process.pid), host: hostname() };
  const mine = encodeOwner(me);
  if (heldHere.has(path)) throw new DataDirLockedError(dataDir, me);
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const h = await open(path, 'wx', 0o644);
      try {
        await h.writeFile(mine);
        await h.sync();
      } finally {
        await h.close();
      }
      heldHere.add(path);
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          heldHere.delete(path);
          const now = await readFile(path, 'utf8').catch(() => undefined);
          if (now === mine) await unlink(path).catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // released meanwhile: try again
    const owner = decodeOwner(text);
    // An unreadable lock is one whose writer died between creating and writing it.
    if (owner && isAlive(owner)) throw new DataDirLockedError(dataDir, owner);
    // Stale: move it aside under a name only we use, then check that what we moved is what we judged.
    const aside = `${path}.stale-${process.pid}-${attempt}`;
    try {
      await rename(path, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // someone else took it over first
      throw e;
    }
    const moved = await readFile(aside, 'utf8').catch(() => undefined);
    if (moved !== text) {
      // A live lock created after our read: put it back (unless yet another one exists by now).
      await link(aside, path).catch(() => {});
    }
    await unlink(aside).catch(() => {});
  }
  throw new McuMgrError('DATA_DIR_LOCKED', `could not take the lock of ${dataDir}: it changed hands too often`);
}

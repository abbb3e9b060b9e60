/**
 * Real figures for OS task statistics (0/2) and memory pool statistics (0/3) from the Node
 * process that runs the emulated device.
 *
 * Tasks: the process's threads from /proc/self/task (Linux), with their names, scheduling
 * priority, state mapped to Zephyr's thread_state bits, and CPU time as `runtime`
 * (microseconds). Elsewhere: the main thread only. Stack figures are not reported (as Zephyr
 * without CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO).
 *
 * Heaps: one entry per V8 heap space (`v8.getHeapSpaceStatistics`), keyed by index as Zephyr
 * does ("0", "1", …): `blksiz` 1, `nblks` total bytes, `nfree` free bytes, `min` the least free
 * bytes seen since the server started (total − most used).
 */
import { readdir, readFile } from 'node:fs/promises';
import { getHeapSpaceStatistics } from 'node:v8';

/** Zephyr thread_state bits (kernel_structs.h). */
export const ZephyrThreadState = { DUMMY: 0x01, PENDING: 0x02, SLEEPING: 0x04, DEAD: 0x08, SUSPENDED: 0x10, ABORTING: 0x20, SUSPENDING: 0x40, QUEUED: 0x80 } as const;

export interface TaskEntry {
  name: string;
  prio: number;
  state: number;
  runtime?: number;
  stksiz?: number;
  stkuse?: number;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function mapLinuxState(s: string): number {
  switch (s) {
    case 'R':
      return ZephyrThreadState.QUEUED;
    case 'S':
    case 'D':
    case 'I':
      return ZephyrThreadState.PENDING;
    case 'T':
    case 't':
      return ZephyrThreadState.SUSPENDED;
    case 'Z':
    case 'X':
      return ZephyrThreadState.DEAD;
    default:
      return 0;
  }
}

/** The process's threads, in thread id order. */
export async function processThreads(): Promise<TaskEntry[]> {
  try {
    const tids = (await readdir('/proc/self/task')).map(Number).filter(Number.isInteger).sort((a, b) => a - b);
    const out: TaskEntry[] = [];
    for (const tid of tids) {
      let stat: string;
      try {
        stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8');
      } catch {
        continue; // the thread ended meanwhile
      }
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(open + 1, close);
      const f = stat.slice(close + 2).split(' ');
      // After the name: state(3) ... utime(14) stime(15) ... priority(18): indexes from field 3.
      const state = f[0] ?? '?';
      const utime = Number(f[11]);
      const stime = Number(f[12]);
      const prio = Number(f[15]);
      out.push({ name, prio: Number.isFinite(prio) ? prio : 0, state: mapLinuxState(state), runtime: Math.round(((utime + stime) * 1e6) / TICKS_PER_SECOND) || 0 });
    }
    if (out.length > 0) return out;
  } catch {
    // not Linux: fall through
  }
  const cpu = process.cpuUsage();
  return [{ name: 'main', prio: 0, state: ZephyrThreadState.QUEUED, runtime: cpu.user + cpu.system }];
}

const minFree = new Map<string, number>();

/** Heap entries keyed "0", "1", … with Zephyr's mpstat fields. */
export function heapStats(): Record<string, { blksiz: number; nblks: number; nfree: number; min: number }> {
  const out: Record<string, { blksiz: number; nblks: number; nfree: number; min: number }> = {};
  getHeapSpaceStatistics().forEach((s, i) => {
    const total = s.space_size;
    const free = Math.max(0, total - s.space_used_size);
    const seen = Math.min(minFree.get(s.space_name) ?? free, free);
    minFree.set(s.space_name, seen);
    out[String(i)] = { blksiz: 1, nblks: total, nfree: free, min: seen };
  });
  return out;
}

/** V8 heap space names, in the order of {@link heapStats}'s indexes (for people reading the figures). */
export function heapNames(): string[] {
  return getHeapSpaceStatistics().map((s) => s.space_name);
}

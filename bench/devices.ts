/**
 * Many devices in one process: `mcumgr serve --devices 1000 --fast` (the built CLI, its own
 * process). Figures: start-up wall time; resident memory per device idle, and after every device
 * got a 256 KiB image upload (uploads 8 at a time from this process), each against the target of
 * 2 MB per emulated device; the process's peak; disk blocks per device (slot files are sparse:
 * a 1.5 MiB slot pair takes only what was written). Set `MCUMGR_BENCH_DEVICES` for another count.
 */
import { spawn } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { SmpClient } from '../src/client/client.ts';
import { uploadImage } from '../src/client/image-upload.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { buildImage } from '../src/image/build.ts';
import { CLI, ROOT, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

const TARGET_MB = 2;

async function procStatus(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

function diskMb(dir: string): number {
  const r = spawnSync('du', ['-sk', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]) / 1024;
}

export async function benchDevices(): Promise<void> {
  const count = Number(process.env['MCUMGR_BENCH_DEVICES'] ?? 1000);
  section(`${count} emulated devices in one \`mcumgr serve --devices ${count} --fast\` process (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
  spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const dir = await tempDir('mcumgr-bench-devices-');
  const data = join(dir.path, 'farm');
  const t0 = performance.now();
  const child = spawn(CLI, ['serve', '--devices', String(count), '--udp', '127.0.0.1:0', '--fast', '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  try {
    const base = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve --devices ${count} did not start in 10 minutes: ${out}`)), 600_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on udp 127\.0\.0\.1:(\d+)\.\./.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code}: ${out}`));
      });
    });
    const startMs = performance.now() - t0;
    const pid = child.pid!;
    printFigure({ name: `start-up of ${count} devices (new data directories)`, value: startMs / 1000, unit: 's' });
    printFigure({ name: 'start-up per device', value: startMs / count, unit: 'ms' });
    const idle = await procStatus(pid);
    printFigure({ name: `process RSS, ${count} devices idle`, value: idle.rssMb, unit: 'MB' });
    printFigure({ name: 'RSS per device, idle', value: idle.rssMb / count, unit: 'MB', limit: { value: TARGET_MB, label: 'target' } });
    printFigure({ name: 'disk per device, idle (sparse slots)', value: diskMb(data) / count, unit: 'MB' });

    const payload = new Uint8Array(256 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const image = (await buildImage({ payload, version: '2.0.0' })).bytes;
    let next = 0;
    const t1 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) {
          const i = next++;
          const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: base + i }), { timeoutMs: 3000, tries: 5 });
          try {
            const r = await uploadImage(client, image);
            if (r.match !== true) throw new Error(`device ${i}: the upload did not match`);
          } finally {
            await client.close();
          }
        }
      }),
    );
    const uploadMs = performance.now() - t1;
    printFigure({ name: `${count} uploads of 256 KiB, 8 at a time: wall time`, value: uploadMs / 1000, unit: 's' });
    const after = await procStatus(pid);
    printFigure({ name: `process RSS after every device got 256 KiB`, value: after.rssMb, unit: 'MB' });
    printFigure({ name: 'RSS per device after the uploads', value: after.rssMb / count, unit: 'MB', limit: { value: TARGET_MB, label: 'target' } });
    printFigure({ name: 'peak RSS per device (VmHWM)', value: after.peakMb / count, unit: 'MB', limit: { value: TARGET_MB, label: 'target' } });
    printFigure({ name: 'disk per device after the uploads', value: diskMb(data) / count, unit: 'MB' });
    process.stdout.write(`  load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await dir.remove();
  }
}

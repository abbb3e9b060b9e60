/**
 * Start-up: the wall time of a one-shot command, `mcumgr --udp HOST:PORT echo hi` run as a process,
 * against `node -e 0` started the same way. Target: at most 1.6 times node's own start-up. Median
 * of several runs of each, interleaved, against an emulator in its own process.
 *
 * Measured as an installed package runs: bin/mcumgr in a directory laid out as npm installs it
 * (bin/, dist/, package.json; no sources), so without the staleness check bin/mcumgr makes in a
 * development checkout (a walk of src/), which is measured beside it. The machine's load average
 * is printed with the figures, and so is the CPU time the processes used (user + system, from
 * /proc/self/stat's reaped-children counters, Linux only): on a busy machine wall time mostly
 * measures the wait for a core, CPU time much less so.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, startServeProcess, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

const RUNS = 25;

/** CPU time (user + system, ms) of this process's children that have been waited for; undefined off Linux. */
async function childrenCpuMs(): Promise<number | undefined> {
  if (!existsSync('/proc/self/stat')) return undefined;
  const stat = await readFile('/proc/self/stat', 'utf8');
  // Fields after the command name (which is in parentheses and may hold spaces): cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function wallTime(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`))));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** A directory laid out as `npm install` lays the package out: bin/ and package.json copied, dist/ and node_modules linked. */
async function installedLayout(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'));
  for (const f of ['mcumgr', 'freshness.mjs']) await copyFile(join(ROOT, 'bin', f), join(dir, 'bin', f));
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
  await symlink(join(ROOT, 'dist'), join(dir, 'dist'), 'dir');
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return join(dir, 'bin', 'mcumgr');
}

export async function benchStartup(): Promise<void> {
  section(`Start-up of a one-shot command (median of ${RUNS} runs; load average ${load()} on ${cpus().length} cores)`);
  const { spawnSync } = await import('node:child_process');
  // The figure is about the built CLI, as installed: build it if the sources are newer.
  spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const dir = await tempDir();
  const installed = await installedLayout(await mkdir(join(dir.path, 'pkg')).then(() => join(dir.path, 'pkg')));
  const serve = await startServeProcess(['--data', join(dir.path, 'device')]);
  try {
    const kinds = {
      node: { command: process.execPath, args: ['-e', '0'] },
      installed: { command: installed, args: ['--udp', `127.0.0.1:${serve.port}`, 'echo', 'hi'] },
      checkout: { command: CLI, args: ['--udp', `127.0.0.1:${serve.port}`, 'echo', 'hi'] },
    };
    const wall: Record<keyof typeof kinds, number[]> = { node: [], installed: [], checkout: [] };
    const cpu: Record<keyof typeof kinds, number> = { node: 0, installed: 0, checkout: 0 };
    let cpuKnown = true;
    for (let i = 0; i < RUNS; i++) {
      for (const [name, k] of Object.entries(kinds) as Array<[keyof typeof kinds, { command: string; args: string[] }]>) {
        const before = await childrenCpuMs();
        wall[name].push(await wallTime(k.command, k.args));
        const after = await childrenCpuMs();
        if (before === undefined || after === undefined) cpuKnown = false;
        else cpu[name] += after - before;
      }
    }
    const nodeWall = { value: median(wall.node), label: 'node -e 0' };
    printFigure({ name: 'mcumgr --udp ... echo hi (installed), wall time', value: median(wall.installed), unit: 'ms', limit: nodeWall });
    printFigure({ name: 'the same from this checkout (bin/mcumgr checks src/), wall', value: median(wall.checkout), unit: 'ms', limit: nodeWall });
    if (cpuKnown) {
      const nodeCpu = { value: cpu.node / RUNS, label: 'node -e 0' };
      printFigure({ name: 'mcumgr --udp ... echo hi (installed), CPU time (mean)', value: cpu.installed / RUNS, unit: 'ms', limit: nodeCpu });
      printFigure({ name: 'the same from this checkout, CPU time (mean)', value: cpu.checkout / RUNS, unit: 'ms', limit: nodeCpu });
    }
    process.stdout.write(`  target: at most 1.6 times node -e 0 (load average after: ${load()})\n`);
  } finally {
    await serve.stop();
    await dir.remove();
  }
}

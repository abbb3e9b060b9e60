/**
 * Start-up: the wall time of a one-shot command, `mcumgr --udp HOST:PORT echo hi` run as a process
 * (bin/mcumgr on the built dist/, as an installed package runs), against `node -e 0` started the
 * same way. Target: at most 1.6 times node's own start-up. Median of several runs of each,
 * interleaved, against an emulator in its own process.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CLI, ROOT, startServeProcess, tempDir } from '../test/helpers.ts';
import { printFigure, section } from './report.ts';

const RUNS = 15;

function wallTime(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`))));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchStartup(): Promise<void> {
  section('Start-up of a one-shot command (median of ' + RUNS + ' runs)');
  const { spawnSync } = await import('node:child_process');
  // The figure is about the built CLI, as installed: build it if the sources are newer.
  spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const dir = await tempDir();
  const serve = await startServeProcess(['--data', dir.path]);
  try {
    const cli: number[] = [];
    const node: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      node.push(await wallTime(process.execPath, ['-e', '0']));
      cli.push(await wallTime(CLI, ['--udp', `127.0.0.1:${serve.port}`, 'echo', 'hi']));
    }
    const limit = median(node);
    printFigure({ name: 'mcumgr --udp ... echo hi, wall time', value: median(cli), unit: 'ms', limit: { value: limit, label: 'node -e 0' } });
    process.stdout.write(`  target: at most 1.6 times node -e 0\n`);
  } finally {
    await serve.stop();
    await dir.remove();
  }
}

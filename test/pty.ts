/**
 * Pseudo-terminals for serial tests and benchmarks, made by socat: a pair joined like a
 * null-modem cable, or one pty relayed to socat's stdin/stdout.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/**
 * Why the serial tests cannot run here, or undefined when they can: they need socat (CI installs
 * it). Tests pass it as `{ skip: socatMissing }`, which prints the reason.
 */
export const socatMissing: string | undefined = spawnSync('socat', ['-V'], { stdio: 'ignore' }).error ? 'socat is not installed (apt-get install socat): serial tests need its pseudo-terminals' : undefined;

/** Ends a child process (SIGTERM) and resolves when it has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Runs socat with the given addresses and resolves once its data transfer loop has started (the ptys exist). */
export async function startSocat(addresses: [string, string], stdio: 'ignore' | 'pipe' = 'ignore'): Promise<ChildProcess> {
  const child = spawn('socat', ['-d', '-d', ...addresses], { stdio: [stdio, stdio, 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/starting data transfer loop/.test(err)) resolve();
    });
    child.once('exit', () => reject(new Error(`socat failed: ${err}`)));
  });
  return child;
}

/** Two ptys with links at `a` and `b`: what one end writes the other reads. */
export async function ptyPair(a: string, b: string): Promise<{ a: string; b: string; child: ChildProcess; stop: () => Promise<void> }> {
  const child = await startSocat([`PTY,raw,echo=0,link=${a}`, `PTY,raw,echo=0,link=${b}`]);
  return { a, b, child, stop: () => stopChild(child) };
}

/**
 * Transfer progress for people: bytes, percent, speed and ETA on one redrawn line on stderr, as
 * the Go mcumgr shows (`35.69 KiB / 92.92 KiB [====>---] 38.41% 2.97 KiB/s 00m19`). Drawn only when
 * stderr is a terminal and --json is off; otherwise silent. Uses cli-progress.
 */
import cliProgress from 'cli-progress';

export interface TransferProgress {
  /** Bytes done so far; `total` when it becomes known later (a download learns it from the device). */
  update(done: number, total?: number): void;
  stop(): void;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(2)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--m--';
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds % 60);
  return `${String(m).padStart(2, '0')}m${String(s).padStart(2, '0')}`;
}

/** A progress line for a transfer of `total` bytes (0 if not known yet), or a silent one when not on a terminal. */
export function createTransferProgress(initialTotal: number, options: { enabled: boolean; label?: string }): TransferProgress {
  let total = initialTotal;
  if (!options.enabled || !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const start = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      hideCursor: true,
      barsize: 30,
      fps: 10,
      format: (opts, params) => {
        const done = params.value;
        const secs = (Date.now() - start) / 1000;
        const speed = secs > 0 ? done / secs : 0;
        const width = opts.barsize ?? 30;
        const filled = Math.round(params.progress * width);
        const barText = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + '-'.repeat(width - filled);
        return `${options.label ? options.label + ' ' : ''}${formatBytes(done)} / ${formatBytes(total)} [${barText}] ${(params.progress * 100).toFixed(2)}% ${formatBytes(Math.round(speed))}/s ${formatEta(speed > 0 ? (total - done) / speed : Infinity)}`;
      },
    },
    cliProgress.Presets.legacy,
  );
  bar.start(total, 0);
  return {
    update: (done, newTotal) => {
      if (newTotal !== undefined && newTotal !== total) {
        total = newTotal;
        bar.setTotal(total);
      }
      bar.update(Math.min(done, total));
    },
    stop: () => bar.stop(),
  };
}

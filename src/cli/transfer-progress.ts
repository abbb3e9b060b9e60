/**
 * Transfer progress for people, on stderr, never in --json:
 * - on a terminal, bytes, percent, speed and ETA on one redrawn line, as the Go mcumgr shows
 *   (`35.69 KiB / 92.92 KiB [====>---] 38.41% 2.97 KiB/s 00m19`), drawn with cli-progress;
 * - without one (CI logs), a plain line at most every {@link plainIntervalMs} (3 s; the
 *   environment's MCUMGR_PROGRESS_INTERVAL_MS changes it), with --json too: stdout keeps its one
 *   JSON document.
 * While a transfer runs, Ctrl-C (SIGINT) or SIGTERM stops it cleanly: the terminal is restored
 * (the bar hides the cursor and turns line wrap off), a line says how to resume, and the process
 * exits with 130 (143 for SIGTERM).
 */
import cliProgress from 'cli-progress';

/** Interval of the plain progress lines when stderr is not a terminal. */
export function plainIntervalMs(): number {
  const n = Number(process.env['MCUMGR_PROGRESS_INTERVAL_MS']);
  return Number.isFinite(n) && n > 0 ? n : 3000;
}

export interface TransferProgress {
  /** Bytes done so far; `total` when it becomes known later (a download learns it from the device). */
  update(done: number, total?: number): void;
  stop(): void;
}

export interface TransferProgressOptions {
  /** False with --json: no redrawn bar (plain lines off a terminal still go to stderr). */
  enabled: boolean;
  label?: string;
  /** What to say after an interrupt, given the bytes done: how to resume. */
  onInterrupt?: (done: number) => string;
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

/** Shows the cursor and turns line wrap back on (what the bar turned off). */
const RESTORE_TERMINAL = '\x1b[?25h\x1b[?7h';

/** A progress display for a transfer of `total` bytes (0 if not known yet). */
export function createTransferProgress(initialTotal: number, options: TransferProgressOptions): TransferProgress {
  let total = initialTotal;
  let done = 0;
  const start = Date.now();
  const stats = (): { speed: number; percent: number } => {
    const secs = (Date.now() - start) / 1000;
    return { speed: secs > 0 ? done / secs : 0, percent: total > 0 ? (done / total) * 100 : 0 };
  };
  const prefix = options.label ? options.label + ' ' : '';
  const tty = options.enabled && process.stderr.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  const plain = process.stderr.isTTY !== true;
  const interval = plainIntervalMs();
  let lastPlain = Date.now();
  if (tty) {
    bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        hideCursor: true,
        barsize: 30,
        fps: 10,
        format: (opts, params) => {
          const { speed } = stats();
          const width = opts.barsize ?? 30;
          const filled = Math.round(params.progress * width);
          const barText = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + '-'.repeat(width - filled);
          return `${prefix}${formatBytes(params.value)} / ${formatBytes(total)} [${barText}] ${(params.progress * 100).toFixed(2)}% ${formatBytes(Math.round(speed))}/s ${formatEta(speed > 0 ? (total - params.value) / speed : Infinity)}`;
        },
      },
      cliProgress.Presets.legacy,
    );
    bar.start(total, 0);
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    bar?.stop();
    if (tty) process.stderr.write(RESTORE_TERMINAL);
    const hint = options.onInterrupt?.(done);
    process.stderr.write(`\nInterrupted after ${formatBytes(done)}${total > 0 ? ` of ${formatBytes(total)}` : ''}${hint ? `; ${hint}` : ''}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let stopped = false;
  return {
    update: (n, newTotal) => {
      if (newTotal !== undefined && newTotal !== total) {
        total = newTotal;
        bar?.setTotal(total);
      }
      done = total > 0 ? Math.min(n, total) : n;
      bar?.update(done);
      if (plain && Date.now() - lastPlain >= interval) {
        lastPlain = Date.now();
        const { speed, percent } = stats();
        process.stderr.write(`${prefix}${formatBytes(done)} / ${formatBytes(total)} (${percent.toFixed(0)}%, ${formatBytes(Math.round(speed))}/s)\n`);
      }
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      bar?.stop();
    },
  };
}

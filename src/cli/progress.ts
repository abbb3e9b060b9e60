/**
 * Transfer progress on a terminal: one self-rewriting line on stderr, shown only when stderr is a
 * TTY and the output is not --json.
 */
export interface ProgressReporter {
  update(p: { done: number; total: number }): void;
  finish(): void;
}

function human(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function createProgress(label: string, enabled: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (!enabled || !stream.isTTY) return { update: () => {}, finish: () => {} };
  const started = Date.now();
  let last = 0;
  let shown = false;
  const draw = (p: { done: number; total: number }): void => {
    const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? `${human(p.done / secs)}/s` : '';
    const width = 30;
    const filled = Math.round((pct / 100) * width);
    stream.write(`\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(pct).padStart(3)}% ${human(p.done)}/${human(p.total)} ${rate}\x1b[K`);
    shown = true;
  };
  let lastP = { done: 0, total: 0 };
  return {
    update(p) {
      lastP = p;
      const now = Date.now();
      if (now - last < 100 && p.done < p.total) return;
      last = now;
      draw(p);
    },
    finish() {
      if (shown) {
        draw(lastP);
        stream.write('\n');
      }
    },
  };
}

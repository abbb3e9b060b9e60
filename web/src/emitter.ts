/** A tiny change notifier for the page's state objects, and the hook that re-renders on change. */
import { useEffect, useState } from 'preact/hooks';

export class Emitter {
  private readonly listeners = new Set<() => void>();
  private scheduled = false;

  /** `throttleMs`: tell listeners at most that often (default: once per frame). */
  constructor(private readonly throttleMs = 0) {}

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells listeners, at most once per frame (many packets per frame during an upload). */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = (): void => {
      this.scheduled = false;
      for (const l of [...this.listeners]) l();
    };
    if (this.throttleMs > 0) setTimeout(run, this.throttleMs);
    else if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined' && document.visibilityState === 'visible') requestAnimationFrame(run);
    else setTimeout(run, 16);
  }
}

/** Re-renders the component whenever `source` changes. */
export function useEmitter(source: Emitter | undefined): void {
  const [, setTick] = useState(0);
  useEffect(() => source?.subscribe(() => setTick((n) => n + 1)), [source]);
}

/** Re-renders every `ms` while `active` (countdowns, rates). */
export function useTicker(ms: number, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return now;
}

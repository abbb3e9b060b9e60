/** Benchmark output: each figure beside its limit or target, as a ratio. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** What the figure is compared with: a physical limit (link capacity) or a target. */
  limit?: { value: number; label: string };
}

export function printFigure(f: Figure): void {
  const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const ratio = f.limit ? `  ratio ${(f.value / f.limit.value).toFixed(2)} of ${f.limit.label} (${fmt(f.limit.value)} ${f.unit})` : '';
  process.stdout.write(`  ${f.name.padEnd(58)} ${fmt(f.value).padStart(10)} ${f.unit}${ratio}\n`);
}

export function section(title: string): void {
  process.stdout.write(`\n${title}\n`);
}

/** Stats: every statistics group's counters as live charts (uPlot), polled at a chosen period, as values or rates. */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { commands } from '../../../src/core/commands/index.ts';
import { useEmitter } from '../emitter.ts';
import type { DeviceSession } from '../session.ts';

interface Series {
  time: number[];
  fields: Record<string, number[]>;
}

const MAX_POINTS = 300;
const COLORS = ['#1f5fbf', '#b3261e', '#1b7f3b', '#8a4baf', '#b35c00', '#00707a', '#5b5b5b', '#a0336a'];

export function StatsPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const [groups, setGroups] = useState<string[] | undefined>();
  const [periodMs, setPeriodMs] = useState(1000);
  const [rate, setRate] = useState(false);
  const [paused, setPaused] = useState(false);
  const [data, setData] = useState<Record<string, Series>>({});
  const dataRef = useRef<Record<string, Series>>({});

  useEffect(() => {
    void session.attempt(session.request('List statistics groups', commands.stat.list, {})).then((r) => r && setGroups(r.stat_list));
  }, []);

  useEffect(() => {
    if (!groups || paused) return undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async (): Promise<void> => {
      const t = Date.now() / 1000;
      const results = await Promise.all(groups.map((name) => session.attempt(session.request(`Read stats ${name}`, commands.stat.show, { name }, { tries: 1 }))));
      if (stopped) return;
      const next = { ...dataRef.current };
      groups.forEach((name, i) => {
        const r = results[i];
        if (!r) return;
        const s: Series = next[name] ? { time: [...next[name].time], fields: { ...next[name].fields } } : { time: [], fields: {} };
        s.time.push(t);
        for (const [field, value] of Object.entries(r.fields)) {
          const arr = [...(s.fields[field] ?? new Array<number>(s.time.length - 1).fill(NaN))];
          arr.push(value);
          s.fields[field] = arr;
        }
        for (const [field, arr] of Object.entries(s.fields)) if (arr.length < s.time.length) s.fields[field] = [...arr, NaN];
        if (s.time.length > MAX_POINTS) {
          s.time.splice(0, s.time.length - MAX_POINTS);
          for (const k of Object.keys(s.fields)) s.fields[k] = s.fields[k]!.slice(-MAX_POINTS);
        }
        next[name] = s;
      });
      dataRef.current = next;
      setData(next);
      timer = setTimeout(() => void poll(), periodMs);
    };
    void poll();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [groups, periodMs, paused]);

  return (
    <div>
      <div class="toolbar">
        <label for="stats-period">Poll every</label>
        <select id="stats-period" value={String(periodMs)} onChange={(e) => setPeriodMs(Number((e.target as HTMLSelectElement).value))}>
          {[250, 500, 1000, 2000, 5000].map((ms) => (
            <option key={ms} value={String(ms)}>
              {ms < 1000 ? `${ms} ms` : `${ms / 1000} s`}
            </option>
          ))}
        </select>
        <label class="check">
          <input type="checkbox" checked={rate} onChange={(e) => setRate((e.target as HTMLInputElement).checked)} /> Rate (per second)
        </label>
        <button type="button" onClick={() => setPaused(!paused)}>
          {paused ? 'Resume' : 'Pause'}
        </button>
      </div>
      {!groups && <p class="hint">Reading the statistics groups…</p>}
      <div class="charts">
        {groups?.map((name) => (
          <StatChart key={name} name={name} series={data[name]} rate={rate} />
        ))}
      </div>
    </div>
  );
}

function toRates(time: number[], values: number[]): number[] {
  return values.map((v, i) => (i === 0 ? NaN : (v - values[i - 1]!) / Math.max(1e-3, time[i]! - time[i - 1]!)));
}

function StatChart({ name, series, rate }: { name: string; series: Series | undefined; rate: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const fields = series ? Object.keys(series.fields) : [];
  const shape = `${fields.join(',')}|${rate}`;

  useEffect(() => {
    if (!box.current || fields.length === 0) return undefined;
    const width = Math.max(280, Math.min(640, box.current.clientWidth || 480));
    plot.current = new uPlot(
      {
        width,
        height: 200,
        scales: { x: { time: true } },
        axes: [{ stroke: '#333' }, { stroke: '#333', size: 60 }],
        series: [{}, ...fields.map((f, i) => ({ label: f, stroke: COLORS[i % COLORS.length]!, width: 2, spanGaps: true }))],
        legend: { show: true },
      },
      [[], ...fields.map(() => [])],
      box.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, [shape]);

  useEffect(() => {
    if (!plot.current || !series) return;
    // uPlot takes null for a gap (NaN would break its scale).
    const ys = fields.map((f) => (rate ? toRates(series.time, series.fields[f]!) : series.fields[f]!).map((v) => (Number.isFinite(v) ? v : null)));
    plot.current.setData([series.time, ...ys] as uPlot.AlignedData);
  }, [series, shape]);

  const last = series ? series.time.length : 0;
  return (
    <figure class="card chart" data-testid={`chart-${name}`} data-points={last}>
      <figcaption>
        <strong>{name}</strong> <span class="muted">{rate ? 'per second' : 'counters'}, {last} samples</span>
      </figcaption>
      <div ref={box} class="plot" role="img" aria-label={`Chart of ${name}`} />
      {series && (
        <table class="table compact">
          <caption class="sr-only">Latest values of {name}</caption>
          <thead>
            <tr>
              <th scope="col">Counter</th>
              <th scope="col">Value</th>
              <th scope="col">Per second</th>
            </tr>
          </thead>
          <tbody>
            {fields.map((f) => {
              const rates = toRates(series.time, series.fields[f]!);
              const r = rates[rates.length - 1];
              return (
                <tr key={f}>
                  <td>{f}</td>
                  <td data-testid={`stat-${name}-${f}`}>{series.fields[f]![series.fields[f]!.length - 1]}</td>
                  <td data-testid={`rate-${name}-${f}`}>{r !== undefined && Number.isFinite(r) ? r.toFixed(1) : '–'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </figure>
  );
}

/** Shell: a console over SMP shell exec, with command history (Up/Down) kept per device. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { commands } from '../../../src/core/commands/index.ts';
import { useEmitter } from '../emitter.ts';
import type { DeviceSession } from '../session.ts';

interface ConsoleLine {
  kind: 'in' | 'out' | 'err';
  text: string;
}

interface ShellState {
  lines: ConsoleLine[];
  history: string[];
}

const states = new WeakMap<DeviceSession, ShellState>();

/**
 * The words to send: the device joins argv with spaces and parses the line itself (quotes and
 * escapes included, as Zephyr's shell_mgmt does), so the line is only cut at whitespace here.
 */
export function splitArgv(line: string): string[] {
  return line.trim().split(/\s+/).filter((w) => w !== '');
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function ShellPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const state = states.get(session) ?? { lines: [], history: [] };
  states.set(session, state);
  const [line, setLine] = useState('');
  const [, setTick] = useState(0);
  const [pos, setPos] = useState(-1);
  const out = useRef<HTMLPreElement>(null);
  useEffect(() => {
    out.current?.scrollTo({ top: out.current.scrollHeight });
  });
  const push = (l: ConsoleLine): void => {
    state.lines.push(l);
    if (state.lines.length > 2000) state.lines.splice(0, state.lines.length - 2000);
    setTick((n) => n + 1);
  };
  const exec = async (): Promise<void> => {
    const text = line.trim();
    if (!text) return;
    setLine('');
    setPos(-1);
    if (state.history[state.history.length - 1] !== text) state.history.push(text);
    push({ kind: 'in', text: `$ ${text}` });
    try {
      const r = await session.request(`Shell: ${text}`, commands.shell.exec, { argv: splitArgv(text) }, { timeoutMs: 10000, tries: 1 });
      const ret = r.ret ?? r.rc ?? 0;
      push({ kind: ret === 0 ? 'out' : 'err', text: r.o.replace(ANSI, '').replace(/\n$/, '') + (ret !== 0 ? `\n(returned ${ret})` : '') });
    } catch (e) {
      push({ kind: 'err', text: (e as Error).message });
    }
  };
  return (
    <section class="card" aria-labelledby="sh-h">
      <div class="card-head">
        <h3 id="sh-h">Shell</h3>
        <button
          type="button"
          onClick={() => {
            state.lines.length = 0;
            setTick((n) => n + 1);
          }}
        >
          Clear
        </button>
      </div>
      <pre class="console" ref={out} role="log" aria-live="polite" aria-label="Shell output" tabIndex={0} data-testid="shell-output">
        {state.lines.map((l, i) => (
          <div key={i} class={`console-${l.kind}`}>
            {l.text}
          </div>
        ))}
      </pre>
      <form
        class="console-input"
        onSubmit={(e) => {
          e.preventDefault();
          void exec();
        }}
      >
        <label for="sh-line">Command</label>
        <input
          id="sh-line"
          value={line}
          autocomplete="off"
          spellcheck={false}
          onInput={(e) => setLine((e.target as HTMLInputElement).value)}
          onKeyDown={(e) => {
            if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
            e.preventDefault();
            const h = state.history;
            if (h.length === 0) return;
            const next = e.key === 'ArrowUp' ? (pos < 0 ? h.length - 1 : Math.max(0, pos - 1)) : pos < 0 ? -1 : pos + 1 >= h.length ? -1 : pos + 1;
            setPos(next);
            setLine(next < 0 ? '' : h[next]!);
          }}
        />
        <button type="submit">Run</button>
      </form>
      <p class="hint">Up and Down walk the history. Try: help, kernel version, net iface.</p>
    </section>
  );
}

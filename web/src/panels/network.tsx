/** Network: the device's net_mgmt events, live, through the shell's `net events`, and its interfaces (`net iface`). */
import { useEffect, useState } from 'preact/hooks';
import { commands } from '../../../src/core/commands/index.ts';
import { useEmitter } from '../emitter.ts';
import type { DeviceSession } from '../session.ts';

export function NetworkPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const [events, setEvents] = useState<string[]>([]);
  const [ifaces, setIfaces] = useState<string>('');
  const [live, setLive] = useState(true);
  const [problem, setProblem] = useState('');
  const shell = async (argv: string[]): Promise<string | undefined> => {
    const r = await session.attempt(session.request(`Shell: ${argv.join(' ')}`, commands.shell.exec, { argv }, { timeoutMs: 5000, tries: 1 }));
    if (!r) return undefined;
    if ((r.ret ?? r.rc ?? 0) !== 0) {
      setProblem(`\`${argv.join(' ')}\` returned ${r.ret ?? r.rc}: ${r.o.trim()}`);
      return undefined;
    }
    setProblem('');
    return r.o;
  };
  useEffect(() => {
    void shell(['net', 'iface']).then((o) => o !== undefined && setIfaces(o));
  }, []);
  useEffect(() => {
    if (!live) return undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async (): Promise<void> => {
      const o = await shell(['net', 'events']);
      if (stopped) return;
      if (o !== undefined) setEvents(o.split('\n').filter((l) => l.trim() !== ''));
      timer = setTimeout(() => void poll(), 2000);
    };
    void poll();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [live]);
  return (
    <div>
      <section class="card" aria-labelledby="net-ev">
        <div class="card-head">
          <h3 id="net-ev">net_mgmt events</h3>
          <label class="check">
            <input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} /> Live (every 2 s)
          </label>
        </div>
        {problem && <p class="warn">{problem}</p>}
        <pre class="console" data-testid="net-events" tabIndex={0} aria-label="Network events">
          {events.length ? events.join('\n') : 'No events yet.'}
        </pre>
      </section>
      <section class="card" aria-labelledby="net-if">
        <h3 id="net-if">Interfaces</h3>
        <pre class="console" tabIndex={0} aria-label="Network interfaces">
          {ifaces || '–'}
        </pre>
      </section>
    </div>
  );
}

/** The SMP log: each packet decoded (header fields, command, CBOR as JSON, errors by name), exportable. */
import { useState } from 'preact/hooks';
import { useEmitter } from '../emitter.ts';
import type { DeviceSession } from '../session.ts';
import { decodeLogPacket, exportLog } from '../smp-log.ts';
import { saveFile } from '../format.ts';

const SHOWN = 200;

export function LogPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  useEmitter(session.logChanges);
  const [open, setOpen] = useState<number | undefined>();
  const shown = session.log.slice(-SHOWN).reverse();
  return (
    <section class="card" aria-labelledby="log-h">
      <div class="card-head">
        <h3 id="log-h">SMP log</h3>
        <div class="toolbar">
          <span class="muted" data-testid="log-count">
            {session.log.length} packets kept{session.log.length > SHOWN ? `, newest ${SHOWN} shown` : ''}
          </span>
          <button type="button" onClick={() => saveFile(`smp-log-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, exportLog(session.label, session.log), 'application/json')}>
            Export JSON
          </button>
          <button type="button" onClick={() => session.clearLog()}>
            Clear
          </button>
        </div>
      </div>
      <table class="table log" data-testid="smp-log">
        <caption class="sr-only">SMP packets, newest first</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Time</th>
            <th scope="col">Dir</th>
            <th scope="col">Op</th>
            <th scope="col">Command</th>
            <th scope="col">Seq</th>
            <th scope="col">Len</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((p) => {
            const d = decodeLogPacket(p.packet);
            const m = d.messages[0];
            return [
              <tr key={p.n} class={m?.error ? 'log-error' : ''} data-testid="log-row">
                <td>
                  <button type="button" class="link" aria-expanded={open === p.n} onClick={() => setOpen(open === p.n ? undefined : p.n)} aria-label={`Details of packet ${p.n}`}>
                    {p.n}
                  </button>
                </td>
                <td>{new Date(p.time).toISOString().slice(11, 23)}</td>
                <td>{p.dir === 'tx' ? '→' : '←'}</td>
                <td>
                  {m ? `${m.opName} v${m.version === 1 ? 2 : 1}` : '?'}
                </td>
                <td>{m?.command ?? d.problem}</td>
                <td>{m?.seq}</td>
                <td>{m?.length}</td>
                <td>{m?.error ?? m?.problem ?? (p.dir === 'rx' ? 'ok' : '')}</td>
              </tr>,
              open === p.n ? (
                <tr key={`${p.n}-d`}>
                  <td colSpan={8}>
                    <pre class="json" tabIndex={0} aria-label={`Packet ${p.n} decoded`}>
                      {JSON.stringify(d, null, 2)}
                    </pre>
                  </td>
                </tr>
              ) : null,
            ];
          })}
        </tbody>
      </table>
    </section>
  );
}

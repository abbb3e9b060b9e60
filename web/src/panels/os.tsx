/** OS: thread statistics (taskstat), the device clock, reset. */
import { useEffect, useState } from 'preact/hooks';
import { commands } from '../../../src/core/commands/index.ts';
import type { Infer } from '../../../src/core/schema.ts';
import type { taskStat } from '../../../src/core/commands/index.ts';
import { useEmitter } from '../emitter.ts';
import { explainError } from '../error-help.ts';
import type { DeviceSession } from '../session.ts';

type TaskStat = Infer<typeof taskStat>;

/** RFC 3339 local time without zone, as Zephyr's datetime takes it. */
function nowForDevice(): string {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function OsPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const [tasks, setTasks] = useState<Record<string, TaskStat> | undefined>();
  const [clock, setClock] = useState<string | undefined>();
  const [resetNote, setResetNote] = useState('');
  const readTasks = async (): Promise<void> => {
    const r = await session.attempt(session.request('Read task statistics', commands.os.taskStats, {}));
    if (r) setTasks(r.tasks);
  };
  const readClock = async (): Promise<void> => {
    try {
      setClock((await session.request('Read date-time', commands.os.datetimeGet, {}, { quiet: true })).datetime);
    } catch (e) {
      // A device whose clock was never set answers OS_MGMT_ERR_RTC_NOT_SET: a state, not a failure.
      setClock(`not available (${explainError(e).name})`);
    }
  };
  useEffect(() => {
    void readTasks();
    void readClock();
  }, []);
  return (
    <div>
      <section class="card" aria-labelledby="os-tasks">
        <div class="card-head">
          <h3 id="os-tasks">Threads</h3>
          <button type="button" onClick={() => void readTasks()}>
            Refresh
          </button>
        </div>
        {tasks && (
          <table class="table" data-testid="taskstat">
            <caption class="sr-only">Thread statistics</caption>
            <thead>
              <tr>
                <th scope="col">Thread</th>
                <th scope="col">Priority</th>
                <th scope="col">State</th>
                <th scope="col">Stack use</th>
                <th scope="col">Run time</th>
                <th scope="col">Switches</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(tasks).map(([name, t]) => (
                <tr key={name}>
                  <td>{name}</td>
                  <td>{t.prio}</td>
                  <td>{t.state}</td>
                  <td>
                    {t.stkuse ?? '–'} / {t.stksiz ?? '–'}
                    {t.stkuse !== undefined && t.stksiz ? <meter min={0} max={t.stksiz} value={t.stkuse} aria-label={`stack use of ${name}`} /> : null}
                  </td>
                  <td>{t.runtime ?? '–'}</td>
                  <td>{t.cswcnt ?? '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card" aria-labelledby="os-clock">
        <h3 id="os-clock">Date and time</h3>
        <p data-testid="datetime">{clock ?? '–'}</p>
        <div class="toolbar">
          <button type="button" onClick={() => void readClock()}>
            Read
          </button>
          <button
            type="button"
            onClick={() =>
              void session.attempt(session.request('Set date-time', commands.os.datetimeSet, { datetime: nowForDevice() })).then((r) => {
                if (r !== undefined) void readClock();
              })
            }
          >
            Set to this computer's time
          </button>
        </div>
      </section>
      <section class="card" aria-labelledby="os-reset">
        <h3 id="os-reset">Reset</h3>
        <div class="toolbar">
          <button
            type="button"
            onClick={() =>
              void session.attempt(session.request('Reset', commands.os.reset, {}, { tries: 1 })).then((r) => setResetNote(r !== undefined ? 'Reset requested: the device restarts now.' : ''))
            }
          >
            Reset device
          </button>
          <button type="button" onClick={() => void session.attempt(session.request('Forced reset', commands.os.reset, { force: true }, { tries: 1 })).then((r) => setResetNote(r !== undefined ? 'Forced reset requested.' : ''))}>
            Force reset
          </button>
        </div>
        {resetNote && <p role="status">{resetNote}</p>}
      </section>
    </div>
  );
}

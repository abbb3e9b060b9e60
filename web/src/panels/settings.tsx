/** Settings: read, write, delete, commit, load, save. Values shown as text and hex. */
import { useState } from 'preact/hooks';
import { commands } from '../../../src/core/commands/index.ts';
import { fromHex, toHex } from '../../../src/core/bytes.ts';
import { UsageError } from '../../../src/core/errors.ts';
import { useEmitter } from '../emitter.ts';
import type { DeviceSession } from '../session.ts';

export function SettingsPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const [name, setName] = useState('app/');
  const [value, setValue] = useState('');
  const [asHex, setAsHex] = useState(false);
  const [result, setResult] = useState<{ name: string; val?: Uint8Array; text: string } | undefined>();

  const bytesOf = (): Uint8Array => {
    if (!asHex) return new TextEncoder().encode(value);
    try {
      return fromHex(value.replace(/\s+/g, ''));
    } catch {
      throw new UsageError('the value is not hex (pairs of 0-9, a-f)');
    }
  };
  const read = async (): Promise<void> => {
    const r = await session.attempt(session.request(`Read setting ${name}`, commands.settings.read, { name }));
    if (r) setResult({ name, val: r.val, text: 'read' });
  };
  const write = async (): Promise<void> => {
    let val: Uint8Array;
    try {
      val = bytesOf();
    } catch (e) {
      await session.attempt(session.run('Write setting', () => Promise.reject(e)));
      return;
    }
    const r = await session.attempt(session.request(`Write setting ${name}`, commands.settings.write, { name, val }));
    if (r) setResult({ name, val, text: 'written (runtime; Save stores it)' });
  };
  const simple = async (label: string, p: () => Promise<unknown>, done: string): Promise<void> => {
    const r = await session.attempt(p());
    if (r !== undefined) setResult({ name, text: done });
    void label;
  };
  const decoded = result?.val ? new TextDecoder('utf-8', { fatal: false }).decode(result.val) : '';
  return (
    <section class="card" aria-labelledby="set-h">
      <h3 id="set-h">Setting</h3>
      <div class="toolbar">
        <label for="set-name">Name</label>
        <input id="set-name" class="wide" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} spellcheck={false} />
      </div>
      <div class="toolbar">
        <label for="set-value">Value</label>
        <input id="set-value" class="wide" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} spellcheck={false} />
        <label class="check">
          <input type="checkbox" checked={asHex} onChange={(e) => setAsHex((e.target as HTMLInputElement).checked)} /> hex
        </label>
      </div>
      <div class="toolbar">
        <button type="button" onClick={() => void read()}>
          Read
        </button>
        <button type="button" onClick={() => void write()}>
          Write
        </button>
        <button type="button" onClick={() => void simple('delete', () => session.request(`Delete setting ${name}`, commands.settings.delete, { name }), 'deleted')}>
          Delete
        </button>
        <button type="button" onClick={() => void simple('save', () => session.request('Save settings', commands.settings.save, {}), 'saved to storage')}>
          Save
        </button>
        <button type="button" onClick={() => void simple('commit', () => session.request('Commit settings', commands.settings.commit, {}), 'committed')}>
          Commit
        </button>
        <button type="button" onClick={() => void simple('load', () => session.request('Load settings', commands.settings.load, {}), 'loaded from storage')}>
          Load
        </button>
      </div>
      {result && (
        <dl class="facts" data-testid="setting-result">
          <dt>Setting</dt>
          <dd>{result.name}</dd>
          <dt>Result</dt>
          <dd>{result.text}</dd>
          {result.val && (
            <>
              <dt>Text</dt>
              <dd data-testid="setting-text">{decoded}</dd>
              <dt>Hex</dt>
              <dd>
                <code>{toHex(result.val, ' ')}</code>
              </dd>
            </>
          )}
        </dl>
      )}
    </section>
  );
}

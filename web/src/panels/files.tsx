/** Files: a path (mount point first), size, hash, upload from the computer, download to it. */
import { useState } from 'preact/hooks';
import { commands } from '../../../src/core/commands/index.ts';
import { toHex } from '../../../src/core/bytes.ts';
import { downloadFile, uploadFile } from '../../../src/client/fs-transfer.ts';
import { useEmitter } from '../emitter.ts';
import type { DeviceSession } from '../session.ts';
import { formatBytes, saveFile } from '../format.ts';

interface Entry {
  path: string;
  size?: number;
  hash?: string;
  note?: string;
}

export function FilesPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const [mount, setMount] = useState('/lfs');
  const [name, setName] = useState('/lfs/');
  const [file, setFile] = useState<File | undefined>();
  const [entries, setEntries] = useState<Entry[]>([]);
  const [progress, setProgress] = useState<{ done: number; total: number; what: string } | undefined>();

  // What is learned about a path adds to what was known (a hash keeps the "uploaded" note).
  const note = (e: Entry): void => setEntries((list) => [{ ...list.find((x) => x.path === e.path), ...e }, ...list.filter((x) => x.path !== e.path)].slice(0, 50));
  const budget = (bytes: number): number => 30_000 + Math.ceil(bytes / 1024) * 200;

  const stat = async (path = name): Promise<void> => {
    const r = await session.attempt(session.request(`Stat ${path}`, commands.fs.status, { name: path }));
    if (r) note({ path, size: r.len });
  };
  const hash = async (path = name): Promise<void> => {
    const r = await session.attempt(session.request(`Hash ${path}`, commands.fs.hash, { name: path, type: 'sha256' }, { timeoutMs: 10000, tries: 1 }));
    if (r) note({ path, size: r.len, hash: typeof r.output === 'number' ? r.output.toString(16) : toHex(r.output) });
  };
  const upload = async (): Promise<void> => {
    if (!file) return;
    const path = name.endsWith('/') ? name + file.name : name;
    const data = new Uint8Array(await file.arrayBuffer());
    const client = session.requireClient();
    const r = await session.attempt(
      session.run(`Upload ${path}`, (signal) => uploadFile(client, path, data, { signal, onProgress: (p) => setProgress({ ...p, what: `Uploading ${path}` }) }), budget(data.length)),
    );
    setProgress(undefined);
    if (r) note({ path, size: data.length, note: `uploaded${r.verified ? `, ${r.verified.type} verified` : ''}` });
    setName(path);
  };
  const download = async (path = name): Promise<void> => {
    const client = session.requireClient();
    const st = await session.attempt(session.request(`Stat ${path}`, commands.fs.status, { name: path }));
    if (!st) return;
    const r = await session.attempt(session.run(`Download ${path}`, (signal) => downloadFile(client, path, { signal, onProgress: (p) => setProgress({ ...p, what: `Downloading ${path}` }) }), budget(st.len)));
    setProgress(undefined);
    if (!r) return;
    note({ path, size: r.data.length, note: `downloaded${r.verified ? `, ${r.verified.type} verified` : ''}` });
    saveFile(path.slice(path.lastIndexOf('/') + 1) || 'download.bin', r.data);
  };

  return (
    <div>
      <section class="card" aria-labelledby="fs-path">
        <h3 id="fs-path">Path</h3>
        <div class="toolbar">
          <label for="fs-mount">Mount point</label>
          <input id="fs-mount" class="short" value={mount} onInput={(e) => setMount((e.target as HTMLInputElement).value)} />
          <button type="button" onClick={() => setName(mount.endsWith('/') ? mount : `${mount}/`)}>
            Go to mount point
          </button>
        </div>
        <div class="toolbar">
          <label for="fs-name">File</label>
          <input id="fs-name" class="wide" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} spellcheck={false} />
          <button type="button" onClick={() => void stat()}>
            Size
          </button>
          <button type="button" onClick={() => void hash()}>
            Hash
          </button>
          <button type="button" onClick={() => void download()}>
            Download
          </button>
        </div>
        <div class="toolbar">
          <label for="fs-local">Local file</label>
          <input id="fs-local" type="file" onChange={(e) => setFile((e.target as HTMLInputElement).files?.[0])} />
          <button type="button" disabled={!file} onClick={() => void upload()}>
            Upload
          </button>
        </div>
        <p class="hint">SMP has no directory listing: name files by path, starting with the mount point. A path ending in / takes the local file's name.</p>
        {progress && (
          <div>
            <label for="fs-progress">{progress.what}</label> <progress id="fs-progress" max={progress.total} value={progress.done} /> {formatBytes(progress.done)} of {formatBytes(progress.total)}
          </div>
        )}
      </section>
      <section class="card" aria-labelledby="fs-seen">
        <h3 id="fs-seen">Files seen</h3>
        <table class="table" data-testid="files">
          <caption class="sr-only">Files seen in this session</caption>
          <thead>
            <tr>
              <th scope="col">Path</th>
              <th scope="col">Size</th>
              <th scope="col">SHA-256</th>
              <th scope="col">Note</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.path}>
                <td>
                  <code>{e.path}</code>
                </td>
                <td>{e.size !== undefined ? formatBytes(e.size) : '–'}</td>
                <td>
                  <code class="hash">{e.hash ?? '–'}</code>
                </td>
                <td>{e.note ?? ''}</td>
                <td class="actions">
                  <button type="button" class="small" onClick={() => void download(e.path)} aria-label={`Download ${e.path}`}>
                    Download
                  </button>
                  <button type="button" class="small" onClick={() => void hash(e.path)} aria-label={`Hash ${e.path}`}>
                    Hash
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}

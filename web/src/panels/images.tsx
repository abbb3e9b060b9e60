/**
 * Images: the slot grid (with slot sizes and the actions MCUboot allows on each slot) and the
 * upgrade wizard: drop an image, see it parsed and verified in the page, run the whole upgrade
 * with progress, speed, ETA and retransmissions, and get a verdict (reverted included).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { commands } from '../../../src/core/commands/index.ts';
import { toHex } from '../../../src/core/bytes.ts';
import { tlvTypeName, verifyImage, type ImageVerification } from '../../../src/image/index.ts';
import { upgradeImage, type SlotState, type UpgradeStage } from '../../../src/client/upgrade.ts';
import { McuMgrError } from '../../../src/core/errors.ts';
import { useEmitter, useTicker } from '../emitter.ts';
import type { DeviceSession } from '../session.ts';
import { slotActions } from '../slot-actions.ts';
import { formatBytes, formatDuration, shortHex } from '../format.ts';
import { explainError, type ExplainedError } from '../error-help.ts';
import { ErrorBox } from '../error-box.tsx';

interface SlotInfo {
  image: number;
  slot: number;
  size?: number | undefined;
}

function flagsOf(s: SlotState): string[] {
  const out: string[] = [];
  if (s.active) out.push('active');
  if (s.confirmed) out.push('confirmed');
  if (s.pending) out.push('pending');
  if (s.permanent) out.push('permanent');
  if (s.bootable === false) out.push('not bootable');
  return out;
}

export function ImagesPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const [slots, setSlots] = useState<SlotState[] | undefined>();
  const [sizes, setSizes] = useState<SlotInfo[]>([]);
  const [maxImage, setMaxImage] = useState<number | undefined>();
  const refresh = async (): Promise<void> => {
    const st = await session.attempt(session.request('Read image state', commands.image.state, {}));
    if (st) setSlots(st.images);
    const info = await session.attempt(session.request('Read slot info', commands.image.slotInfo, {}));
    if (info) {
      setSizes(info.images.flatMap((i) => i.slots.map((s) => ({ image: i.image, slot: s.slot, size: s.size }))));
      const m = info.images.find((i) => i.max_image_size !== undefined)?.max_image_size;
      setMaxImage(m);
    }
  };
  useEffect(() => {
    if (session.state === 'online') void refresh();
  }, [session.state === 'online']);

  const act = async (label: string, fn: () => Promise<unknown>): Promise<void> => {
    await session.attempt(fn());
    await refresh();
    void label;
  };

  return (
    <div>
      <section class="card" aria-labelledby="img-slots">
        <div class="card-head">
          <h3 id="img-slots">Slots</h3>
          <button type="button" onClick={() => void refresh()}>
            Refresh
          </button>
        </div>
        {slots ? (
          <table class="table" data-testid="slot-grid">
            <caption class="sr-only">Image slots</caption>
            <thead>
              <tr>
                <th scope="col">Image</th>
                <th scope="col">Slot</th>
                <th scope="col">Version</th>
                <th scope="col">Hash</th>
                <th scope="col">Flags</th>
                <th scope="col">Slot size</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {slots.map((s) => {
                const a = slotActions(s, slots, session.facts.mode);
                const size = sizes.find((x) => x.image === (s.image ?? 0) && x.slot === s.slot)?.size;
                const key = `${s.image ?? 0}-${s.slot}`;
                return (
                  <tr key={key} data-testid={`slot-${key}`}>
                    <td>{s.image ?? 0}</td>
                    <td>{s.slot}</td>
                    <td data-testid="version">{s.version || '–'}</td>
                    <td>
                      <code title={s.hash ? toHex(s.hash) : undefined}>{shortHex(s.hash)}</code>
                    </td>
                    <td data-testid="flags">
                      {flagsOf(s).map((f) => (
                        <span key={f} class={`flag flag-${f.replace(' ', '-')}`}>
                          {f}
                        </span>
                      ))}
                    </td>
                    <td>{size !== undefined ? formatBytes(size) : '–'}</td>
                    <td class="actions">
                      <button type="button" class="small" disabled={a.test !== true} title={a.test === true ? 'Boot this image once at the next reset' : a.test} onClick={() => void act('test', () => session.request('Mark for test', commands.image.stateWrite, { hash: s.hash!, confirm: false }))}>
                        Test
                      </button>
                      <button type="button" class="small" disabled={a.confirm !== true} title={a.confirm === true ? 'Make this image permanent' : a.confirm} onClick={() => void act('confirm', () => session.request('Confirm image', commands.image.stateWrite, s.active ? { confirm: true } : { hash: s.hash!, confirm: true }))}>
                        Confirm
                      </button>
                      <button type="button" class="small" disabled={a.erase !== true} title={a.erase === true ? 'Erase this slot' : a.erase} onClick={() => void act('erase', () => session.request('Erase slot', commands.image.erase, { slot: (s.image ?? 0) * 2 + s.slot }, { timeoutMs: 20000, tries: 1 }))}>
                        Erase
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : (
          <p class="hint">Reading…</p>
        )}
        {maxImage !== undefined && <p class="hint">Largest image the device takes: {formatBytes(maxImage)}</p>}
        <p class="hint">Buttons are enabled only where MCUboot allows the action; hover a disabled one for why.</p>
        <button
          type="button"
          onClick={() =>
            void act('reset', async () => {
              await session.request('Reset', commands.os.reset, {}, { tries: 1 });
            })
          }
        >
          Reset device
        </button>
      </section>
      <UpgradeWizard session={session} slots={slots} onDone={refresh} />
    </div>
  );
}

interface Picked {
  name: string;
  bytes: Uint8Array;
  check?: ImageVerification;
  problem?: ExplainedError;
}

interface Progress {
  stage: UpgradeStage;
  stages: Array<{ stage: UpgradeStage; detail: string; at: number }>;
  offset: number;
  total: number;
  startOffset: number;
  startTime: number;
  uploadStart?: number;
  /** When the device held the whole image. */
  uploadEnd?: number;
  retransmissions: number;
  window: number;
}

type Verdict = { kind: 'upgraded'; text: string } | { kind: 'reverted'; text: string; error: ExplainedError } | { kind: 'failed'; text: string; error: ExplainedError };

const STAGE_LABELS: Record<UpgradeStage, string> = {
  inspect: 'Inspect',
  upload: 'Upload',
  test: 'Mark for test',
  reset: 'Reset',
  wait: 'Reconnect',
  verify: 'Verify',
  confirm: 'Confirm',
  done: 'Done',
};

async function checkFile(name: string, bytes: Uint8Array): Promise<Picked> {
  try {
    return { name, bytes, check: await verifyImage(bytes) };
  } catch (e) {
    return { name, bytes, problem: explainError(e) };
  }
}

function UpgradeWizard({ session, slots, onDone }: { session: DeviceSession; slots: SlotState[] | undefined; onDone: () => Promise<void> }) {
  const [picked, setPicked] = useState<Picked | undefined>();
  const [confirm, setConfirm] = useState(true);
  const [progress, setProgress] = useState<Progress | undefined>();
  const [verdict, setVerdict] = useState<Verdict | undefined>();
  const [running, setRunning] = useState(false);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const now = useTicker(250, running);

  const take = async (file: File | undefined): Promise<void> => {
    if (!file) return;
    setVerdict(undefined);
    setProgress(undefined);
    setPicked(await checkFile(file.name, new Uint8Array(await file.arrayBuffer())));
  };

  const start = async (): Promise<void> => {
    if (!picked?.check) return;
    const client = session.requireClient();
    const t0 = Date.now();
    const base = { timeouts: client.stats.timeouts, retransmissions: client.stats.retransmissions };
    let p: Progress = { stage: 'inspect', stages: [], offset: 0, total: picked.bytes.length, startOffset: 0, startTime: t0, retransmissions: 0, window: 1 };
    setProgress(p);
    setVerdict(undefined);
    setRunning(true);
    let lastShown = 0;
    const budget = 120_000 + Math.ceil(picked.bytes.length / 1024) * 100;
    try {
      const r = await session.run(
        `Upgrade to ${picked.check.image.version}`,
        (signal) =>
          upgradeImage(client, picked.bytes, {
            signal,
            noConfirm: !confirm,
            waitMs: 60_000,
            onStage: (stage, detail) => {
              p = { ...p, stage, stages: [...p.stages, { stage, detail, at: Date.now() }], ...(stage === 'upload' ? { uploadStart: Date.now() } : {}) };
              setProgress(p);
            },
            onProgress: (u) => {
              const t = Date.now();
              p = {
                ...p,
                offset: u.offset,
                total: u.total,
                window: u.window,
                retransmissions: client.stats.timeouts - base.timeouts + client.stats.retransmissions - base.retransmissions,
                ...(u.offset >= u.total && p.uploadEnd === undefined ? { uploadEnd: t } : {}),
              };
              // Rendering on every chunk would slow the upload: the view follows at most every 100 ms.
              if (t - lastShown >= 100 || u.offset >= u.total) {
                lastShown = t;
                setProgress(p);
              }
            },
          }),
        budget,
      );
      const text = r.alreadyRunning
        ? `Image ${r.image} already runs ${r.to.version}: nothing to do`
        : `Upgraded image ${r.image}: ${r.from?.version ?? '(none)'} → ${r.to.version}${r.confirmed ? ', confirmed' : ', running in test (not confirmed)'}`;
      setVerdict({ kind: 'upgraded', text });
    } catch (e) {
      const error = explainError(e);
      if (e instanceof McuMgrError && e.code === 'UPGRADE_REVERTED') setVerdict({ kind: 'reverted', text: `the device kept its old image: ${e.message}`, error });
      else setVerdict({ kind: 'failed', text: `stopped at “${STAGE_LABELS[p.stage]}”: ${error.name}: ${error.message}`, error });
      session.dismissError(); // the verdict says it, with the advice
    } finally {
      setRunning(false);
      await onDone();
    }
  };

  const check = picked?.check;
  const already = check?.image.hash && slots?.find((s) => s.hash && toHex(s.hash) === toHex(check.image.hash!));
  const uploadElapsed = progress?.uploadStart ? (progress.uploadEnd ?? (running ? now : Date.now())) - progress.uploadStart : 0;
  const speed = progress && (uploadElapsed > 200 || progress.uploadEnd) && uploadElapsed > 0 ? (progress.offset - progress.startOffset) / (uploadElapsed / 1000) : 0;
  const eta = progress && speed > 0 ? ((progress.total - progress.offset) / speed) * 1000 : NaN;

  return (
    <section class="card" aria-labelledby="img-upgrade">
      <h3 id="img-upgrade">Upgrade</h3>
      <div
        class={`dropzone ${dragging ? 'dragging' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void take(e.dataTransfer?.files[0]);
        }}
      >
        <p>Drop an MCUboot image here, or</p>
        <label class="button" for="image-file">
          Choose image file…
        </label>
        <input id="image-file" ref={fileInput} type="file" class="sr-only" onChange={(e) => void take((e.target as HTMLInputElement).files?.[0])} />
      </div>
      {picked?.problem && <ErrorBox error={picked.problem} />}
      {check && (
        <div class="image-check" data-testid="image-check">
          <dl class="facts">
            <dt>File</dt>
            <dd>
              {picked.name} ({formatBytes(picked.bytes.length)})
            </dd>
            <dt>Version</dt>
            <dd data-testid="file-version">{check.image.version}</dd>
            <dt>Hash</dt>
            <dd>
              <code title={check.image.hash ? toHex(check.image.hash) : ''}>{shortHex(check.image.hash)}</code>{' '}
              {check.hashValid ? <span class="ok">matches the content</span> : <span class="bad">does not match the content</span>}
            </dd>
            <dt>TLVs</dt>
            <dd>{[...check.image.protectedTlvs, ...check.image.tlvs].map((t) => tlvTypeName(t.type)).join(', ')}</dd>
            <dt>Signature</dt>
            <dd>
              {[...check.image.protectedTlvs, ...check.image.tlvs].some((t) => /RSA|ECDSA|ED25519/.test(tlvTypeName(t.type)))
                ? 'signed (the bootloader checks it against its key)'
                : 'none: a bootloader that requires signed images will not boot it'}
            </dd>
            <dt>Bootable</dt>
            <dd>{check.image.bootable ? 'yes' : 'no (non-bootable flag)'}</dd>
          </dl>
          {already && <p class="hint">The device already holds this image in image {already.image ?? 0} slot {already.slot}.</p>}
          <label class="check">
            <input type="checkbox" checked={confirm} onChange={(e) => setConfirm((e.target as HTMLInputElement).checked)} /> Confirm the new image once it runs
          </label>
          <button type="button" class="primary" disabled={!check.hashValid || running || session.state !== 'online'} onClick={() => void start()}>
            Start upgrade
          </button>
        </div>
      )}
      {progress && (
        <div class="upgrade-progress" data-testid="upgrade-progress">
          <ol class="stages">
            {(['upload', 'test', 'reset', 'wait', 'verify', ...(confirm ? (['confirm'] as const) : [])] as UpgradeStage[]).map((st) => {
              const seen = progress.stages.find((x) => x.stage === st);
              const current = progress.stage === st && running;
              return (
                <li key={st} class={current ? 'current' : seen ? 'done' : ''} aria-current={current ? 'step' : undefined}>
                  {STAGE_LABELS[st]}
                  {seen && <span class="muted"> {seen.detail}</span>}
                </li>
              );
            })}
          </ol>
          <label for="upload-progress">Upload</label>
          <progress id="upload-progress" max={progress.total} value={progress.offset} data-testid="upload-bar" />
          <p class="numbers" data-testid="upload-numbers" data-rate={Math.round(speed)}>
            {formatBytes(progress.offset)} of {formatBytes(progress.total)} ({Math.floor((progress.offset / Math.max(1, progress.total)) * 100)}%) · {speed > 0 ? `${formatBytes(Math.round(speed))}/s` : '–'} · ETA {progress.offset >= progress.total ? 'done' : formatDuration(eta)} · window {progress.window} · {progress.retransmissions} retransmissions
          </p>
        </div>
      )}
      {verdict && (
        <div class={`verdict verdict-${verdict.kind}`} role="status" data-testid="verdict" data-verdict={verdict.kind}>
          <p>
            <strong>{verdict.kind === 'upgraded' ? 'Upgraded' : verdict.kind === 'reverted' ? 'Reverted' : 'Failed'}</strong>: {verdict.text}
          </p>
          {verdict.kind !== 'upgraded' && <p class="advice">{verdict.error.advice}</p>}
        </div>
      )}
    </section>
  );
}

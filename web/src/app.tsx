/** The dashboard's frame: devices sidebar, device header, panel tabs, pending requests, errors. */
import { useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { Group } from '../../src/core/commands/command.ts';
import { openBridgeTransport } from '../../src/transport/websocket.ts';
import { openWebSerialTransport, webSerialAvailable, WEB_SERIAL_DEFAULTS, type SerialPortLike } from '../../src/transport/web-serial.ts';
import { requestSmpDevice, webBluetoothConnector, type WebBluetooth, type WebBluetoothDevice } from '../../src/transport/ble/web-bluetooth.ts';
import { openBleTransport } from '../../src/transport/ble/open.ts';
import { useEmitter, useTicker } from './emitter.ts';
import { DeviceSession } from './session.ts';
import { Emitter } from './emitter.ts';
import { formatDuration } from './format.ts';
import { explainError, type ExplainedError } from './error-help.ts';
import { ErrorBox } from './error-box.tsx';
import type { FunctionComponent } from 'preact';
import { OverviewPanel } from './panels/overview.tsx';
import { FilesPanel } from './panels/files.tsx';
import { SettingsPanel } from './panels/settings.tsx';
import { ShellPanel } from './panels/shell.tsx';
import { OsPanel } from './panels/os.tsx';
import { NetworkPanel } from './panels/network.tsx';
import { LogPanel } from './panels/log.tsx';

type PanelProps = { session: DeviceSession };

/**
 * A panel loaded when first shown: the image panel (signature verification, @noble/curves) and the
 * stats charts (uPlot) are half the bundle, and the first render needs neither.
 */
function lazyPanel(load: () => Promise<FunctionComponent<PanelProps>>): FunctionComponent<PanelProps> {
  let loaded: FunctionComponent<PanelProps> | undefined;
  let pending: Promise<FunctionComponent<PanelProps>> | undefined;
  return function LazyPanel(props: PanelProps) {
    const [, setReady] = useState(0);
    useEffect(() => {
      if (loaded) return;
      pending ??= load().then((c) => (loaded = c));
      void pending.then(() => setReady(1));
    }, []);
    const C = loaded;
    return C ? <C {...props} /> : <p class="hint">Loading…</p>;
  };
}

const ImagesPanel = lazyPanel(() => import('./panels/images.tsx').then((m) => m.ImagesPanel));
const StatsPanel = lazyPanel(() => import('./panels/stats.tsx').then((m) => m.StatsPanel));

/** What the page was opened with: `#token=...&device=udp:127.0.0.1:1337&device=...`. */
export interface PageConfig {
  token: string;
  devices: string[];
  bridge: string;
}

export function readPageConfig(): PageConfig {
  const params = new URLSearchParams(location.hash.slice(1));
  return { token: params.get('token') ?? '', devices: params.getAll('device'), bridge: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}` };
}

/** All devices of the page. */
export class Devices extends Emitter {
  readonly list: DeviceSession[] = [];
  selected: DeviceSession | undefined;
  constructor(readonly config: PageConfig) {
    super();
  }

  add(session: DeviceSession): DeviceSession {
    this.list.push(session);
    session.subscribe(() => this.changed());
    this.selected ??= session;
    this.changed();
    void session.connect();
    return session;
  }

  addBridge(connection: string): DeviceSession {
    const existing = this.list.find((s) => s.kind === 'bridge' && s.label === connection);
    if (existing) {
      this.select(existing);
      if (existing.state === 'closed' || existing.state === 'failed') void existing.connect();
      return existing;
    }
    return this.add(new DeviceSession(connection, 'bridge', () => openBridgeTransport({ url: this.config.bridge, token: this.config.token, connection })));
  }

  addSerialPort(port: SerialPortLike, label: string): DeviceSession {
    return this.add(new DeviceSession(label, 'web-serial', () => Promise.resolve(openWebSerialTransport(port))));
  }

  addBluetoothDevice(device: WebBluetoothDevice): DeviceSession {
    return this.add(new DeviceSession(`web-bluetooth:${device.name ?? device.id}`, 'web-bluetooth', () => openBleTransport(webBluetoothConnector(device))));
  }

  select(s: DeviceSession): void {
    this.selected = s;
    this.changed();
  }

  async remove(s: DeviceSession): Promise<void> {
    await s.close();
    this.list.splice(this.list.indexOf(s), 1);
    if (this.selected === s) this.selected = this.list[0];
    this.changed();
  }
}

interface TabDef {
  id: string;
  label: string;
  group?: number;
  render: (s: DeviceSession) => ComponentChildren;
}

const TABS: TabDef[] = [
  { id: 'overview', label: 'Overview', render: (s) => <OverviewPanel session={s} /> },
  { id: 'images', label: 'Images', group: Group.IMAGE, render: (s) => <ImagesPanel session={s} /> },
  { id: 'stats', label: 'Stats', group: Group.STAT, render: (s) => <StatsPanel session={s} /> },
  { id: 'files', label: 'Files', group: Group.FS, render: (s) => <FilesPanel session={s} /> },
  { id: 'settings', label: 'Settings', group: Group.SETTINGS, render: (s) => <SettingsPanel session={s} /> },
  { id: 'shell', label: 'Shell', group: Group.SHELL, render: (s) => <ShellPanel session={s} /> },
  { id: 'os', label: 'OS', group: Group.OS, render: (s) => <OsPanel session={s} /> },
  { id: 'network', label: 'Network', group: Group.SHELL, render: (s) => <NetworkPanel session={s} /> },
  { id: 'log', label: 'SMP log', render: (s) => <LogPanel session={s} /> },
];

export function App({ devices }: { devices: Devices }) {
  useEmitter(devices);
  const s = devices.selected;
  return (
    <div class="layout">
      <header class="topbar">
        <h1>mcumgr dashboard</h1>
        {!devices.config.token && (
          <p class="warn" role="status">
            No bridge token in this address: open the page from the address <code>mcumgr dashboard</code> printed to reach host devices.
          </p>
        )}
      </header>
      <Sidebar devices={devices} />
      <main class="main" aria-label="Device">
        {s ? <DeviceView key={s.id} session={s} /> : <p class="empty">Add a device to start.</p>}
      </main>
    </div>
  );
}

function stateClass(state: string): string {
  return `state state-${state.replace(' ', '-')}`;
}

function Sidebar({ devices }: { devices: Devices }) {
  const [connection, setConnection] = useState('udp:127.0.0.1:1337');
  const [pickError, setPickError] = useState<ExplainedError | undefined>();
  const serial = webSerialAvailable();
  const pickSerial = async (): Promise<void> => {
    setPickError(undefined);
    try {
      const nav = navigator as unknown as { serial: { requestPort(): Promise<SerialPortLike & { open(o: object): Promise<void>; getInfo(): { usbVendorId?: number; usbProductId?: number } }> } };
      const port = await nav.serial.requestPort();
      await port.open(WEB_SERIAL_DEFAULTS);
      const info = port.getInfo();
      devices.addSerialPort(port, `web-serial:${info.usbVendorId?.toString(16) ?? 'port'}:${info.usbProductId?.toString(16) ?? ''}`);
    } catch (e) {
      if ((e as Error).name !== 'NotFoundError') setPickError(explainError(e));
    }
  };
  const bluetooth = (navigator as unknown as { bluetooth?: WebBluetooth }).bluetooth;
  const pickBluetooth = async (): Promise<void> => {
    setPickError(undefined);
    try {
      devices.addBluetoothDevice(await requestSmpDevice(bluetooth!));
    } catch (e) {
      if ((e as Error).name !== 'NotFoundError') setPickError(explainError(e));
    }
  };
  return (
    <nav class="sidebar" aria-label="Devices">
      <h2>Devices</h2>
      <ul class="devices">
        {devices.list.map((d) => (
          <li key={d.id}>
            <button class={`device ${d === devices.selected ? 'selected' : ''}`} aria-current={d === devices.selected ? 'true' : undefined} onClick={() => devices.select(d)}>
              <span class="device-label">{d.label}</span>
              <span class={stateClass(d.state)} data-testid="link-state">
                {d.state}
              </span>
            </button>
          </li>
        ))}
      </ul>
      <form
        class="add-device"
        onSubmit={(e) => {
          e.preventDefault();
          if (connection.trim()) devices.addBridge(connection.trim());
        }}
      >
        <label for="connection">Connection (through the bridge)</label>
        <input id="connection" name="connection" value={connection} onInput={(e) => setConnection((e.target as HTMLInputElement).value)} placeholder="udp:127.0.0.1:1337" autocomplete="off" spellcheck={false} />
        <p class="hint">
          e.g. <code>udp:HOST:PORT</code> or <code>serial:dev=/dev/ttyACM0</code>
        </p>
        <button type="submit">Add device</button>
      </form>
      <div class="pickers">
        <button type="button" onClick={() => void pickSerial()} disabled={!serial}>
          Web Serial port…
        </button>
        {!serial && <p class="hint">This browser has no Web Serial (Chromium on desktop has it).</p>}
        <button type="button" onClick={() => void pickBluetooth()} disabled={!bluetooth}>
          Web Bluetooth device…
        </button>
        {!bluetooth && <p class="hint">This browser has no Web Bluetooth (Chromium on desktop and Android has it); BLE devices are also reachable through the bridge (ble:...).</p>}
        {pickError && <ErrorBox error={pickError} />}
      </div>
    </nav>
  );
}

function PendingList({ session }: { session: DeviceSession }) {
  const now = useTicker(100, session.pending.size > 0);
  if (session.pending.size === 0) return null;
  return (
    <section class="pending" aria-label="Requests in progress">
      <ul>
        {[...session.pending.values()].map((p) => {
          const total = p.deadline - p.started;
          const left = Math.max(0, p.deadline - now);
          return (
            <li key={p.id} data-testid="pending">
              <span class="pending-label">{p.label}</span>
              <progress max={total} value={left} aria-label={`${p.label}: time left`} />
              <span class="pending-left">{formatDuration(left)} left</span>
              <button type="button" class="small" onClick={() => p.cancel()}>
                Cancel
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function DeviceView({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const tabs = TABS.filter((t) => t.group === undefined || (session.state !== 'connecting' && session.supports(t.group)));
  const [tab, setTab] = useState('overview');
  const current = tabs.find((t) => t.id === tab) ?? tabs[0]!;
  useEffect(() => {
    if (!tabs.some((t) => t.id === tab)) setTab('overview');
  }, [tabs.length]);
  return (
    <div class="device-view">
      <div class="device-head">
        <h2>
          {session.label} <span class={stateClass(session.state)}>{session.state}</span>
        </h2>
        <div class="head-actions">
          <button type="button" onClick={() => void session.reconnect()}>
            Reconnect
          </button>
          <button type="button" onClick={() => void session.close()} disabled={session.state === 'closed'}>
            Disconnect
          </button>
        </div>
      </div>
      {session.linkError && <ErrorBox error={session.linkError} />}
      {session.lastError && <ErrorBox error={{ ...session.lastError, message: `${session.lastError.op}: ${session.lastError.message}` }} onDismiss={() => session.dismissError()} />}
      <PendingList session={session} />
      <div role="tablist" aria-label="Panels" class="tabs">
        {tabs.map((t) => (
          <button
            key={t.id}
            role="tab"
            id={`tab-${t.id}`}
            aria-selected={t === current}
            aria-controls={`panel-${t.id}`}
            tabIndex={t === current ? 0 : -1}
            onClick={() => setTab(t.id)}
            onKeyDown={(e) => {
              const i = tabs.indexOf(t);
              const next = e.key === 'ArrowRight' ? tabs[(i + 1) % tabs.length] : e.key === 'ArrowLeft' ? tabs[(i - 1 + tabs.length) % tabs.length] : undefined;
              if (next) {
                setTab(next.id);
                document.getElementById(`tab-${next.id}`)?.focus();
              }
            }}
          >
            {t.label}
          </button>
        ))}
      </div>
      <section role="tabpanel" id={`panel-${current.id}`} aria-labelledby={`tab-${current.id}`} class="panel" data-panel={current.id}>
        {current.render(session)}
      </section>
    </div>
  );
}

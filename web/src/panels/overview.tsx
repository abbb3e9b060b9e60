/** Overview: link, MCUmgr params, OS/app info, bootloader and its mode, the groups the device supports. */
import { useEmitter } from '../emitter.ts';
import { INFO_FIELDS, type DeviceSession } from '../session.ts';
import { MCUBOOT_MODES } from '../slot-actions.ts';
import { groupNameOf } from '../../../src/core/error-codes.ts';

export function OverviewPanel({ session }: { session: DeviceSession }) {
  useEmitter(session);
  const f = session.facts;
  const t = session.transport;
  return (
    <div class="grid2" data-testid="overview" data-discovered={session.discovering || session.state === 'connecting' ? undefined : 'true'}>
      <section class="card" aria-labelledby="ov-link">
        <h3 id="ov-link">Link</h3>
        <dl class="facts">
          <dt>Connection</dt>
          <dd>{session.label}</dd>
          <dt>Transport</dt>
          <dd>{t ? `${t.kind}, MTU ${t.mtu}` : '–'}</dd>
          <dt>SMP version</dt>
          <dd>{session.client ? (session.client.version === 1 ? 'v2' : 'v1') : '–'}</dd>
          <dt>MCUmgr buffers</dt>
          <dd data-testid="params">{f.params ? `${f.params.buf_count} × ${f.params.buf_size} bytes` : '–'}</dd>
          <dt>Requests / retransmissions</dt>
          <dd>{session.client ? `${session.client.stats.requests} / ${session.client.stats.retransmissions}` : '–'}</dd>
        </dl>
      </section>
      <section class="card" aria-labelledby="ov-boot">
        <h3 id="ov-boot">Bootloader</h3>
        <dl class="facts">
          <dt>Bootloader</dt>
          <dd data-testid="bootloader">{f.bootloader ?? 'not reported'}</dd>
          <dt>Mode</dt>
          <dd data-testid="boot-mode">{f.mode === undefined ? '–' : `${MCUBOOT_MODES[f.mode] ?? 'unknown'} (${f.mode})`}</dd>
          {f.noDowngrade !== undefined && (
            <>
              <dt>Downgrade prevention</dt>
              <dd>{f.noDowngrade ? 'on' : 'off'}</dd>
            </>
          )}
        </dl>
      </section>
      <section class="card" aria-labelledby="ov-info">
        <h3 id="ov-info">OS and application</h3>
        <dl class="facts" data-testid="os-info">
          {INFO_FIELDS.filter(([k]) => f.info[k] !== undefined).map(([k, label]) => (
            <>
              <dt key={`t${k}`}>{label}</dt>
              <dd key={`d${k}`}>{f.info[k]}</dd>
            </>
          ))}
        </dl>
        {Object.keys(f.info).length === 0 && <p class="hint">No OS information (the device may not support os info).</p>}
      </section>
      <section class="card" aria-labelledby="ov-groups">
        <h3 id="ov-groups">Supported groups</h3>
        {f.groups ? (
          <>
            <ul class="chips" data-testid="groups">
              {f.groups.map((g) => (
                <li key={g}>
                  {f.groupNames[g] ?? groupNameOf(g)} <span class="muted">({g}{f.handlers[g] !== undefined ? `, ${f.handlers[g]} commands` : ''})</span>
                </li>
              ))}
            </ul>
            <p class="hint">Learned by {f.groupsFrom}. Panels of groups the device lacks are hidden.</p>
          </>
        ) : (
          <p class="hint">Not known yet.</p>
        )}
      </section>
    </div>
  );
}

/** The device's MCUmgr buffer parameters (OS 0/6), which size every transfer's packets and window. */
import { commands } from '../core/commands/index.ts';
import { DeviceError } from '../core/errors.ts';
import { MgmtErr } from '../core/error-codes.ts';
import type { RequestOptions, SmpClient } from './client.ts';

export interface BufferParams {
  bufSize: number;
  bufCount: number;
}

/**
 * Zephyr's defaults (CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE 384) with two buffers (one request in
 * flight), assumed for a device that does not implement the parameters command.
 */
export const FALLBACK_BUFFER_PARAMS: BufferParams = { bufSize: 384, bufCount: 2 };

/**
 * Reads buf_size and buf_count; a device answering rc 8 (not supported) gets the fallback.
 * `request`: how the request waits and is sent again (default: the client's `-t` and `-r`).
 */
export async function readBufferParams(client: SmpClient, signal?: AbortSignal, request?: Pick<RequestOptions, 'timeoutMs' | 'tries' | 'backoffMaxMs'>): Promise<BufferParams> {
  try {
    const p = await client.request(commands.os.params, {}, { ...request, signal });
    return { bufSize: p.buf_size, bufCount: p.buf_count };
  } catch (e) {
    if (e instanceof DeviceError && e.group === undefined && e.rc === MgmtErr.ENOTSUP) return FALLBACK_BUFFER_PARAMS;
    throw e;
  }
}

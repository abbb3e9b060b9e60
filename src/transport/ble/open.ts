/** Opening an SMP transport on a GATT connection, sized by the device's MCUmgr parameters (portable). */
import { SmpClient } from '../../client/client.ts';
import { FALLBACK_BUFFER_PARAMS, readBufferParams, type BufferParams } from '../../client/params.ts';
import type { GattConnector } from './gatt.ts';
import { BleSmpTransport, type BleTransportOptions } from './transport.ts';

export interface OpenBleOptions extends Omit<BleTransportOptions, 'reconnect'> {
  /** Connect again after a disconnect (default true: the connector is used again). */
  reconnect?: boolean;
  /** Time for the `params` request (default 3000 ms) and its tries (default 2). */
  paramsTimeoutMs?: number;
  paramsTries?: number;
}

/**
 * Connects, subscribes, and reads the device's MCUmgr buffer parameters: a device that reports
 * them gets packets up to `buf_size` (it reassembles, as nRF Connect Device Manager assumes); one
 * that does not gets one write per packet. `transport.params` holds what was read.
 */
export async function openBleTransport(connect: GattConnector, options: OpenBleOptions = {}): Promise<BleSmpTransport & { params: BufferParams }> {
  const link = await connect();
  const { reconnect, paramsTimeoutMs, paramsTries, ...rest } = options;
  const transport = new BleSmpTransport(link, { ...rest, ...(reconnect === false ? {} : { reconnect: connect }) }) as BleSmpTransport & { params: BufferParams };
  try {
    await transport.start();
    transport.params = FALLBACK_BUFFER_PARAMS;
    if (options.maxPacket === undefined) {
      // A client of its own for the probe; the caller's client takes the receiver over afterwards.
      const probe = new SmpClient(transport, { timeoutMs: paramsTimeoutMs ?? 3000, tries: paramsTries ?? 2 });
      const params = await readBufferParams(probe);
      transport.params = params;
      if (params !== FALLBACK_BUFFER_PARAMS) transport.setMaxPacket(params.bufSize);
    }
    return transport;
  } catch (e) {
    await transport.close();
    throw e;
  }
}

// Zephyr's net_mgmt in TypeScript: a request handler, an event callback and a synchronous wait,
// with an interface registry raising the events. Run: node --import tsx examples/netmgmt.ts
import { NetMgmt, NetIfManager, NetMgmtLayer, buildNetMgmtCode, initEventCallback, describeNetEvent, NET_EVENT_IF_UP, NET_EVENT_IF_DOWN, NET_EVENT_IPV4_ADDR_ADD } from 'mcumgr/netmgmt';

const netMgmt = new NetMgmt();
const netIfs = new NetIfManager(netMgmt);
// NET_MGMT_REGISTER_REQUEST_HANDLER + net_mgmt(): a request (bit 31 clear) answered directly.
const COUNT_IFACES = buildNetMgmtCode({ layer: NetMgmtLayer.L2, layerCode: 0x7ab, command: 1 });
netMgmt.registerRequestHandler(COUNT_IFACES, () => netIfs.list().length);
// net_mgmt_add_event_callback(): interfaces going up or down.
netMgmt.addEventCallback(initEventCallback((_cb, event, iface) => console.log(`${describeNetEvent(event)} ${iface?.name}`), NET_EVENT_IF_UP | NET_EVENT_IF_DOWN));
// net_mgmt_event_wait(): the next IPv4 address, while the registry changes.
const added = netMgmt.eventWait(NET_EVENT_IPV4_ADDR_ADD, { timeout: 1000 });
netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true });
netIfs.addAddress(2, { addr: '192.0.2.1', prefixLen: 24 });
const { event, iface, info } = await added;
console.log(`${describeNetEvent(event)} on ${iface?.name}: ${JSON.stringify(info)}`);
console.log('interfaces:', netMgmt.request(COUNT_IFACES));

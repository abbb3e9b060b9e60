/** Group 1, image management (smp-spec.md §3.2). */
import { array, bool, bytes, int, lenient, object, optional, text, uint, empty } from '../schema.ts';
import { Group, command } from './command.ts';

const G = Group.IMAGE;

export const imageSlotState = object({
  image: optional(uint()),
  slot: uint(),
  version: text(),
  hash: optional(bytes()),
  bootable: optional(bool()),
  pending: optional(bool()),
  confirmed: optional(bool()),
  active: optional(bool()),
  permanent: optional(bool()),
});

const stateResponse = object({ images: array(imageSlotState), splitStatus: optional(int()) });

export const slotInfoEntry = object({
  image: uint(),
  slots: array(object({ slot: uint(), size: optional(uint()), upload_image_id: optional(uint()), rc: optional(int()) })),
  max_image_size: optional(uint()),
});

export const image = {
  state: command({ group: G, id: 0, op: 'read', name: 'image.state', summary: 'List image slots and their state', request: empty(), response: stateResponse }),
  stateWrite: command({ group: G, id: 0, op: 'write', name: 'image.state.write', summary: 'Mark an image for test or confirm it', request: object({ hash: optional(bytes()), confirm: optional(bool()) }), response: stateResponse }),
  upload: command({
    group: G, id: 1, op: 'write', name: 'image.upload', summary: 'Upload an image chunk',
    request: object({ off: uint(), data: bytes(), len: optional(uint()), image: optional(uint()), sha: optional(bytes()), upgrade: optional(bool()) }),
    // img_mgmt_upload: zcbor_map_decode_bulk with image (uint32), data, len, off, sha, upgrade;
    // a missing off is INVALID_OFFSET (20) from img_mgmt_upload_inspect, not rc 3.
    decode: lenient(
      { image: uint(0xffffffff), data: bytes(), len: uint(), off: uint(), sha: bytes(), upgrade: bool() },
      { defaults: { image: 0, data: new Uint8Array(0), sha: new Uint8Array(0), upgrade: false } },
    ),
    response: object({ off: uint(), match: optional(bool()), rc: optional(int()) }),
  }),
  erase: command({ group: G, id: 5, op: 'write', name: 'image.erase', summary: 'Erase an image slot', request: object({ slot: optional(uint()) }), response: empty() }),
  slotInfo: command({ group: G, id: 6, op: 'read', name: 'image.slot-info', summary: 'Slot sizes and upload ids', request: empty(), response: object({ images: array(slotInfoEntry) }) }),
} as const;

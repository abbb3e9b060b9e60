/**
 * Which image actions MCUboot and img_mgmt allow on a slot, from the image state list and the
 * bootloader mode, so the page offers only the buttons that can succeed (the rules of Zephyr's
 * `img_mgmt_set_next_boot_slot` and `img_mgmt_erase`, as the emulator models them):
 *
 * - test: not the running slot (IMAGE_SETTING_TEST_TO_ACTIVE_DENIED), the slot holds an image,
 *   nothing else is pending, and the running image is confirmed (while it runs in test, the other
 *   slot is its revert target: IMAGE_ALREADY_PENDING);
 * - confirm: the running image while it is not confirmed; another slot's image when nothing is
 *   pending, it is not already permanent, and the running image is confirmed;
 * - erase: not the running slot and not in use (pending, or the revert target).
 *
 * Bootloader modes without test/revert (single slot, DirectXIP without revert, firmware loader,
 * RAM load) offer neither test nor confirm.
 */
export interface SlotView {
  image?: number | undefined;
  slot: number;
  version: string;
  hash?: Uint8Array | undefined;
  active?: boolean | undefined;
  confirmed?: boolean | undefined;
  pending?: boolean | undefined;
  permanent?: boolean | undefined;
}

export interface SlotActions {
  test: string | true;
  confirm: string | true;
  erase: string | true;
}

/** MCUboot modes (os 0/8 `mode`), by number. */
export const MCUBOOT_MODES: Record<number, string> = {
  [-1]: 'unknown',
  0: 'single slot',
  1: 'swap using scratch',
  2: 'overwrite only',
  3: 'swap using move',
  4: 'DirectXIP',
  5: 'DirectXIP with revert',
  6: 'RAM load',
  7: 'firmware loader',
  8: 'single slot RAM load',
  9: 'swap using offset',
};

const NO_TEST_MODES = new Set([0, 4, 6, 7, 8]);

/** For each action: `true` when allowed, else the reason it is not. */
export function slotActions(slot: SlotView, all: readonly SlotView[], mode: number | undefined): SlotActions {
  const image = slot.image ?? 0;
  const same = all.filter((s) => (s.image ?? 0) === image);
  const running = same.find((s) => s.active);
  const otherPending = same.some((s) => s !== slot && s.pending);
  const runningInTest = running !== undefined && running.confirmed !== true;
  const hasImage = slot.hash !== undefined && slot.hash.length > 0;
  const noTest = mode !== undefined && NO_TEST_MODES.has(mode) ? `not possible in MCUboot mode "${MCUBOOT_MODES[mode]}"` : undefined;

  let test: string | true = true;
  if (noTest) test = noTest;
  else if (slot.active) test = 'this image runs now: confirm it instead';
  else if (!hasImage) test = 'the slot holds no image';
  else if (slot.pending) test = 'already marked for the next boot';
  else if (otherPending) test = 'another image is already pending';
  else if (runningInTest) test = 'the running image is in test: confirm it or reset first';

  let confirm: string | true = true;
  if (noTest) confirm = noTest;
  else if (slot.active) confirm = slot.confirmed ? 'already confirmed' : true;
  else if (!hasImage) confirm = 'the slot holds no image';
  else if (slot.permanent) confirm = 'already marked permanent';
  else if (otherPending || slot.pending) confirm = 'an image is pending: reset first';
  else if (runningInTest) confirm = 'the running image is in test: confirm it or reset first';

  let erase: string | true = true;
  if (slot.active) erase = 'this image runs now';
  else if (slot.pending || slot.permanent) erase = 'the image is pending for the next boot';
  else if (runningInTest && hasImage) erase = 'the slot is the revert target of the image in test';
  else if (!hasImage) erase = 'the slot is empty';
  return { test, confirm, erase };
}

// The batch pipeline: `process` takes the ring's slots in groups, in four passes, and writes
// each packet's verdict, reason, flags and connection to its descriptor (layout.ts DESC_*).
//
// At a million connections a packet's index entry and its record are two cache misses, and
// the record's address comes from the index entry. Handled one packet at a time the misses
// follow each other (about 2 x 160 ns on this kind of machine), and the per-packet code is too
// long for the CPU to run ahead into the next packet. So slots go through in groups: pass 1
// validates and hashes each packet; pass 2 touches the index slots of the group; pass 3 reads
// the index entries, now arriving, and touches the candidate records; pass 4 does the work on
// warm lines. Passes 2 and 3 are kept tiny on purpose: a core keeps only as many misses in
// flight as its reorder window holds instructions between them. The touches are plain loads
// folded into a global so that no optimizer drops them.
//
// Between passes the slot's descriptor holds the tuple hash: its low 32 bits in DESC_CONN
// (the home slot) and bits 48..63 in DESC_HASH_HI (the tag), which is all the index uses.

import { connTouch, indexTouch } from './conn';
import {
  DESC_CONN, DESC_FLAGS, DESC_F_CSUM_PARTIAL, DESC_HASH_HI, DESC_L3OFF, DESC_LEN, DESC_REASON, DESC_SIZE,
  DESC_VERDICT, DROP_BAD_SLOT, VERDICT_FORWARD, VERDICT_NONE, CTRL_RESIZED,
} from './layout';
import { handle, packetHash, validate } from './nat';
import { drop, outConn, outFlags, outReason, outTotal, packetBegin, resultBegin } from './packet';
import { CTRL, dataBase, descBase, slotCount, slotSize } from './regions';
import { wheelStart } from './timer';

const GROUP: u32 = 32;
let touchSink: u32 = 0;

@inline function slotDesc(slot: u32): usize { return descBase + <usize>slot * DESC_SIZE; }
@inline function slotPacket(slot: u32, desc: usize): usize {
  return dataBase + <usize>slot * slotSize + <usize>load<u16>(desc + DESC_L3OFF);
}
@inline function storedHash(desc: usize): u64 {
  return (<u64>load<u16>(desc + DESC_HASH_HI) << 48) | <u64>load<u32>(desc + DESC_CONN);
}

function writeResult(desc: usize, verdict: u8): void {
  store<u8>(desc + DESC_VERDICT, verdict);
  store<u16>(desc + DESC_REASON, outReason);
  store<u8>(desc + DESC_FLAGS, outFlags);
  store<u32>(desc + DESC_CONN, outConn);
}

/** Pass 1. Final verdicts are written now; returns 1 when the packet needs passes 2 and 3. */
function parseSlot(slot: u32): u32 {
  const desc = slotDesc(slot);
  const len = load<u32>(desc + DESC_LEN);
  const l3 = <u32>load<u16>(desc + DESC_L3OFF);
  resultBegin(load<u8>(desc + DESC_FLAGS));
  const verdict = len > slotSize || l3 >= len ? drop(DROP_BAD_SLOT) : validate(slotPacket(slot, desc), len - l3);
  if (verdict != VERDICT_NONE) {
    writeResult(desc, verdict);
    return 0;
  }
  const h = packetHash(slotPacket(slot, desc));
  store<u32>(desc + DESC_CONN, <u32>h);
  store<u16>(desc + DESC_HASH_HI, <u16>(h >> 48));
  store<u8>(desc + DESC_VERDICT, VERDICT_NONE);
  return 1;
}

/** Pass 4: the real work. Returns the verdict. */
function completeSlot(slot: u32, now: u32): u8 {
  const desc = slotDesc(slot);
  const flags = load<u8>(desc + DESC_FLAGS);
  resultBegin(flags);
  const l3 = <u32>load<u16>(desc + DESC_L3OFF);
  packetBegin(slotPacket(slot, desc), slotSize - l3, (flags & DESC_F_CSUM_PARTIAL) != 0, storedHash(desc), now);
  const verdict = handle();
  writeResult(desc, verdict);
  // The FTP helper rewrote a 227 reply to a longer or shorter one: the slot's length follows
  // (any padding after the IP datagram is gone with it).
  if (outTotal != 0) {
    store<u32>(desc + DESC_LEN, l3 + outTotal);
    store<u32>(CTRL + CTRL_RESIZED, load<u32>(CTRL + CTRL_RESIZED) + 1);
  }
  return verdict;
}

/** Handles one slot on its own (the host's one-packet call). Returns the verdict. */
export function processSlot(slot: u32, now: u32): u8 {
  return parseSlot(slot) ? completeSlot(slot, now) : load<u8>(slotDesc(slot) + DESC_VERDICT);
}

@inline function ringAdvance(slot: u32, k: u32): u32 {
  const next = slot + k;
  return next >= slotCount ? next - slotCount : next;
}

/** Handles `n` slots from `start`, wrapping around the ring. Returns how many were forwarded. */
export function processRing(start: u32, n: u32, now: u32): u32 {
  wheelStart(now);
  let forwarded: u32 = 0;
  let first = start;
  let left = n;
  while (left > 0) {
    const count = left < GROUP ? left : GROUP;
    let pending: u32 = 0; // bit k: slot k of the group needs passes 2 to 4
    let slot = first;
    for (let k: u32 = 0; k < count; k++) {
      pending |= parseSlot(slot) << k;
      slot = ringAdvance(slot, 1);
    }
    let sink: u32 = 0;
    slot = first;
    for (let k: u32 = 0; k < count; k++) {
      if (pending & (1 << k)) sink += indexTouch(storedHash(slotDesc(slot)));
      slot = ringAdvance(slot, 1);
    }
    slot = first;
    for (let k: u32 = 0; k < count; k++) {
      if (pending & (1 << k)) sink += connTouch(storedHash(slotDesc(slot)));
      slot = ringAdvance(slot, 1);
    }
    touchSink += sink;
    slot = first;
    for (let k: u32 = 0; k < count; k++) {
      if ((pending & (1 << k)) && completeSlot(slot, now) == VERDICT_FORWARD) forwarded++;
      slot = ringAdvance(slot, 1);
    }
    first = slot;
    left -= count;
  }
  return forwarded;
}

// The connection table: fixed records plus one open-addressing index that finds a
// connection from either direction with a single probe sequence.
//
// Every connection has two index entries, one per tuple as it appears on the wire:
//   request tuple  caddr:cport -> vaddr:vport   (client to VIP)
//   reply tuple    daddr:dport -> caddr:cport   (real server to client)
// so one hash of a packet's own (saddr, sport, daddr, dport, proto) finds its connection
// and tells the direction, as IPVS's in/out lookups do with two calls.
//
// Index: linear probing over u32 entries | tag 7 | dir 1 | record + 1 (24) |, 0 = empty,
// exactly 4 x capacity of them, so the load factor never exceeds 1/2. A tuple's home slot is
// the multiply-shift reduction of the hash's low 32 bits (Lemire, "A fast alternative to the
// modulo reduction", 2016), which needs no power-of-two size.
// The 7-bit tag (top bits of the hash) skips most foreign entries without touching their
// record. Deletion shifts later entries of the run back (Knuth 6.4 Algorithm R), so there
// are no tombstones and probe runs stay short with no rebuild.
//
// Memory per connection: 32-byte record + 16 bytes of links (timer wheel, persistence) +
// 4 x 4-byte index slots = 64 bytes.
import {
  CONN_CADDR, CONN_CPORT, CONN_DADDR, CONN_DPORT, CONN_F_HASHED, CONN_FLAGS, CONN_PROTO,
  CONN_F_TEMPLATE, CONN_SIZE, CONN_VADDR, CONN_VPORT, LINK_NEXT, LINK_SIZE, CTRL_BUMP_NEXT, CTRL_FREE_HEAD,
  CTRL_LIVE_CONNS, CTRL_RECORDS_USED, INDEX_DIR_BIT, INDEX_REF_MASK,
} from './layout';
import { connBase, connCapacity, CTRL, indexBase, indexSize, linkBase, sipKey0, sipKey1 } from './regions';
import { sipHash13 } from './siphash';

const TAG_MASK: u32 = 0xfe000000;
const TUPLE_BYTES: u32 = 13; // saddr 4, daddr 4, sport 2, dport 2, proto 1

@inline export function connAddr(idx: u32): usize { return connBase + <usize>idx * CONN_SIZE; }
@inline export function linkAddr(idx: u32): usize { return linkBase + <usize>idx * LINK_SIZE; }

@inline export function tupleHash(saddr: u32, sport: u16, daddr: u32, dport: u16, proto: u8): u64 {
  return sipHash13(sipKey0, sipKey1,
    <u64>saddr | (<u64>daddr << 32),
    <u64>sport | (<u64>dport << 16) | (<u64>proto << 32), TUPLE_BYTES);
}

@inline function tagOf(h: u64): u32 { return <u32>(h >> 32) & TAG_MASK; }
@inline function homeOf(h: u64): u32 { return <u32>(((h & 0xffffffff) * <u64>indexSize) >> 32); }
@inline function nextSlot(i: u32): u32 { return i + 1 == indexSize ? 0 : i + 1; }
/** Steps from slot a forward to slot b, around the end. */
@inline function distance(a: u32, b: u32): u32 { return b >= a ? b - a : b + indexSize - a; }

/** The hash of one of a record's two tuples. */
function entryHash(c: usize, reply: bool): u64 {
  const proto = load<u8>(c + CONN_PROTO);
  return reply
    ? tupleHash(load<u32>(c + CONN_DADDR), load<u16>(c + CONN_DPORT), load<u32>(c + CONN_CADDR), load<u16>(c + CONN_CPORT), proto)
    : tupleHash(load<u32>(c + CONN_CADDR), load<u16>(c + CONN_CPORT), load<u32>(c + CONN_VADDR), load<u16>(c + CONN_VPORT), proto);
}

/** From slot `i` on, the first slot whose entry carries `tag`, or -1 where the run ends. */
@inline function scanTag(tag: u32, i: u32): i32 {
  while (true) {
    const e = load<u32>(indexBase + (<usize>i << 2));
    if (e == 0) return -1;
    if ((e & TAG_MASK) == tag) return <i32>i;
    i = nextSlot(i);
  }
  return -1;
}

@inline function entryAt(slot: i32): u32 { return load<u32>(indexBase + (<usize>slot << 2)); }

/**
 * Finds the index entry of a packet's tuple: 0 when no connection has it, else the entry
 * (record = (entry & INDEX_REF_MASK) - 1, reply direction when entry & INDEX_DIR_BIT).
 */
export function connLookup(h: u64, saddr: u32, sport: u16, daddr: u32, dport: u16, proto: u8): u32 {
  const tag = tagOf(h);
  let i = homeOf(h);
  while (true) {
    const slot = scanTag(tag, i);
    if (slot < 0) return 0;
    const e = entryAt(slot);
    const c = connAddr((e & INDEX_REF_MASK) - 1);
    if (load<u8>(c + CONN_PROTO) == proto) {
      if (e & INDEX_DIR_BIT) {
        if (load<u32>(c + CONN_DADDR) == saddr && load<u16>(c + CONN_DPORT) == sport
          && load<u32>(c + CONN_CADDR) == daddr && load<u16>(c + CONN_CPORT) == dport) return e;
      } else if (load<u32>(c + CONN_CADDR) == saddr && load<u16>(c + CONN_CPORT) == sport
        && load<u32>(c + CONN_VADDR) == daddr && load<u16>(c + CONN_VPORT) == dport) return e;
    }
    i = nextSlot(<u32>slot);
  }
  return 0;
}

/** Loads the word at a hash's home slot, so its cache line is on its way (see nat.ts). */
@inline export function indexTouch(h: u64): u32 {
  return load<u32>(indexBase + (<usize>homeOf(h) << 2));
}

/** Loads the first word of the first record whose entry carries the hash's tag, if any. */
export function connTouch(h: u64): u32 {
  const slot = scanTag(tagOf(h), homeOf(h));
  return slot < 0 ? 0 : load<u32>(connAddr((entryAt(slot) & INDEX_REF_MASK) - 1));
}

function indexInsert(h: u64, entry: u32): void {
  let i = homeOf(h);
  while (load<u32>(indexBase + (<usize>i << 2)) != 0) i = nextSlot(i);
  store<u32>(indexBase + (<usize>i << 2), tagOf(h) | entry);
}

function indexDelete(h: u64, entry: u32): void {
  const want = tagOf(h) | entry;
  let hole = homeOf(h);
  while (load<u32>(indexBase + (<usize>hole << 2)) != want) hole = nextSlot(hole);
  // Shift back every later entry of the run whose home slot is not between the hole and it.
  let j = hole;
  while (true) {
    j = nextSlot(j);
    const e = load<u32>(indexBase + (<usize>j << 2));
    if (e == 0) break;
    const home = homeOf(entryHash(connAddr((e & INDEX_REF_MASK) - 1), (e & INDEX_DIR_BIT) != 0));
    if (distance(home, j) >= distance(hole, j)) {
      store<u32>(indexBase + (<usize>hole << 2), e);
      hole = j;
    }
  }
  store<u32>(indexBase + (<usize>hole << 2), 0);
}

/** Puts a filled-in record's tuples in the index: both for a connection, the request tuple
 * alone for a persistence template (nothing is ever sent to a template). */
export function connHash(idx: u32, requestHash: u64): void {
  const c = connAddr(idx);
  const flags = load<u16>(c + CONN_FLAGS);
  indexInsert(requestHash, idx + 1);
  if (!(flags & CONN_F_TEMPLATE)) {
    indexInsert(entryHash(c, true), (idx + 1) | INDEX_DIR_BIT);
    store<u32>(CTRL + CTRL_LIVE_CONNS, load<u32>(CTRL + CTRL_LIVE_CONNS) + 1);
  }
  store<u16>(c + CONN_FLAGS, flags | CONN_F_HASHED);
}

/** Takes a record's tuples out of the index: no packet finds it any more. */
export function connUnhash(idx: u32): void {
  const c = connAddr(idx);
  const flags = load<u16>(c + CONN_FLAGS);
  indexDelete(entryHash(c, false), idx + 1);
  if (!(flags & CONN_F_TEMPLATE)) {
    indexDelete(entryHash(c, true), (idx + 1) | INDEX_DIR_BIT);
    store<u32>(CTRL + CTRL_LIVE_CONNS, load<u32>(CTRL + CTRL_LIVE_CONNS) - 1);
  }
  store<u16>(c + CONN_FLAGS, flags & ~CONN_F_HASHED);
}

/** How many records are free (never used, or on the free list)? Enough for `n`? */
export function connRecordsFree(n: u32): bool {
  return connCapacity - load<u32>(CTRL + CTRL_RECORDS_USED) >= n;
}

/** A free record (zeroed), or -1 when the table is full. */
export function connAlloc(): i32 {
  let idx: u32;
  const head = load<u32>(CTRL + CTRL_FREE_HEAD);
  if (head != 0) {
    idx = head - 1;
    store<u32>(CTRL + CTRL_FREE_HEAD, load<u32>(linkAddr(idx) + LINK_NEXT));
  } else {
    idx = load<u32>(CTRL + CTRL_BUMP_NEXT);
    if (idx >= connCapacity) return -1;
    store<u32>(CTRL + CTRL_BUMP_NEXT, idx + 1);
  }
  memory.fill(connAddr(idx), 0, CONN_SIZE);
  memory.fill(linkAddr(idx), 0, LINK_SIZE);
  store<u32>(CTRL + CTRL_RECORDS_USED, load<u32>(CTRL + CTRL_RECORDS_USED) + 1);
  return <i32>idx;
}

export function connFree(idx: u32): void {
  const c = connAddr(idx);
  store<u16>(c + CONN_FLAGS, 0);
  store<u32>(linkAddr(idx) + LINK_NEXT, load<u32>(CTRL + CTRL_FREE_HEAD));
  store<u32>(CTRL + CTRL_FREE_HEAD, idx + 1);
  store<u32>(CTRL + CTRL_RECORDS_USED, load<u32>(CTRL + CTRL_RECORDS_USED) - 1);
}

// Services, their VIPs, and real servers (dests), as tables the host writes through the
// control exports and the data plane only reads on a new connection.
//
// The service map is a small linear-probing table keyed by (a, b):
//   service:  a = vaddr, b = 1 << 24 | proto << 16 | vport  -> value = service index
//   VIP:      a = vaddr, b = 0                              -> value = number of services
//   real server: a = daddr, b = 0xffffffff                 -> value = number of dest records
// The VIP entries let a packet for a VIP on a port with no service be refused (IPVS hands
// those to the director's own stack) while traffic to other addresses passes. The real-server
// entries tell which fragments could belong to a connection (see nat.ts).
import {
  DEST_ACTIVE, DEST_CONNS, DEST_STATS_END, DEST_DADDR, DEST_DPORT, DEST_F_AVAILABLE, DEST_F_IN_USE, DEST_F_OVERLOAD, DEST_FLAGS,
  DEST_INACTIVE, DEST_LOWER, DEST_UPPER, DEST_SERVICE, DEST_SIZE, SVC_F_IN_USE,
  SVC_F_ONE_PACKET, SVC_F_PERSISTENT, SVC_FLAGS, SVC_NETMASK, SVC_PROTO, SVC_PTIMEOUT, SVC_SIZE, SVC_VADDR, SVC_VPORT, SVCMAP_ENTRY_SIZE, SVCMAP_KEY_A,
  SVCMAP_KEY_B, SVCMAP_USED, SVCMAP_VALUE,
} from './layout';
import { destBase, maxDests, maxServices, svcBase, svcMapBase, svcMapMask } from './regions';

@inline export function svcAddr(idx: u32): usize { return svcBase + <usize>idx * SVC_SIZE; }
@inline export function destAddr(idx: u32): usize { return destBase + <usize>idx * DEST_SIZE; }
@inline function mapEntry(i: u32): usize { return svcMapBase + <usize>i * SVCMAP_ENTRY_SIZE; }

@inline function serviceKey(proto: u8, vport: u16): u32 { return 0x1000000 | (<u32>proto << 16) | <u32>vport; }
const VIP_KEY: u32 = 0;
const DEST_ADDR_KEY: u32 = 0xffffffff;

@inline function mapHome(a: u32, b: u32): u32 {
  // Keys are the operator's configuration, not attacker-chosen: a multiplicative mix is enough.
  let h = a * 0x9e3779b1 ^ b * 0x85ebca77;
  h ^= h >> 15;
  return h & svcMapMask;
}

/** The map slot holding (a, b), or -1. */
function mapFind(a: u32, b: u32): i32 {
  let i = mapHome(a, b);
  while (true) {
    const e = mapEntry(i);
    if (load<u32>(e + SVCMAP_USED) == 0) return -1;
    if (load<u32>(e + SVCMAP_KEY_A) == a && load<u32>(e + SVCMAP_KEY_B) == b) return <i32>i;
    i = (i + 1) & svcMapMask;
  }
  return -1;
}

function mapInsert(a: u32, b: u32, value: u32): void {
  let i = mapHome(a, b);
  while (load<u32>(mapEntry(i) + SVCMAP_USED) != 0) i = (i + 1) & svcMapMask;
  const e = mapEntry(i);
  store<u32>(e + SVCMAP_KEY_A, a);
  store<u32>(e + SVCMAP_KEY_B, b);
  store<u32>(e + SVCMAP_VALUE, value);
  store<u32>(e + SVCMAP_USED, 1);
}

function mapDelete(slot: u32): void {
  let hole = slot;
  let j = slot;
  while (true) {
    j = (j + 1) & svcMapMask;
    const e = mapEntry(j);
    if (load<u32>(e + SVCMAP_USED) == 0) break;
    const home = mapHome(load<u32>(e + SVCMAP_KEY_A), load<u32>(e + SVCMAP_KEY_B));
    if (((j - home) & svcMapMask) >= ((j - hole) & svcMapMask)) {
      memory.copy(mapEntry(hole), e, SVCMAP_ENTRY_SIZE);
      hole = j;
    }
  }
  memory.fill(mapEntry(hole), 0, SVCMAP_ENTRY_SIZE);
}

/**
 * Service index for (proto, vaddr, vport), or -1. As ip_vs_service_find, a port-zero service
 * (persistent, all ports) catches what no service of the exact port takes.
 */
export function serviceFind(proto: u8, vaddr: u32, vport: u16): i32 {
  let slot = mapFind(vaddr, serviceKey(proto, vport));
  if (slot < 0 && vport != 0) slot = mapFind(vaddr, serviceKey(proto, 0));
  return slot < 0 ? -1 : <i32>load<u32>(mapEntry(<u32>slot) + SVCMAP_VALUE);
}

/**
 * Control: service `idx`'s options: `flags` of SVC_F_PERSISTENT and SVC_F_ONE_PACKET,
 * persistence timeout in ms and netmask in wire order.
 */
export function serviceConfigure(idx: u32, flags: u8, timeoutMs: u32, netmask: u32): i32 {
  if (idx >= maxServices) return -2;
  const s = svcAddr(idx);
  const old = load<u8>(s + SVC_FLAGS);
  if (!(old & SVC_F_IN_USE)) return -2;
  store<u32>(s + SVC_NETMASK, netmask);
  store<u32>(s + SVC_PTIMEOUT, timeoutMs);
  store<u8>(s + SVC_FLAGS, SVC_F_IN_USE | (flags & (SVC_F_PERSISTENT | SVC_F_ONE_PACKET)));
  return 0;
}

@inline export function isVip(addr: u32): bool { return mapFind(addr, VIP_KEY) >= 0; }
@inline export function isDestAddr(addr: u32): bool { return mapFind(addr, DEST_ADDR_KEY) >= 0; }

/** Counts one more (delta 1) or one less (-1) user of the key (a, b); the entry goes at 0. */
function mapRef(a: u32, b: u32, delta: i32): void {
  const slot = mapFind(a, b);
  if (slot < 0) {
    if (delta > 0) mapInsert(a, b, 1);
    return;
  }
  const e = mapEntry(<u32>slot);
  const n = <i32>load<u32>(e + SVCMAP_VALUE) + delta;
  if (n <= 0) mapDelete(<u32>slot);
  else store<u32>(e + SVCMAP_VALUE, <u32>n);
}

/** Control: defines service `idx`. 0 on success, -1 if the key exists, -2 bad index. */
export function serviceSet(idx: u32, proto: u8, vaddr: u32, vport: u16): i32 {
  if (idx >= maxServices || (load<u8>(svcAddr(idx) + SVC_FLAGS) & SVC_F_IN_USE)) return -2;
  if (mapFind(vaddr, serviceKey(proto, vport)) >= 0) return -1;
  const s = svcAddr(idx);
  store<u32>(s + SVC_VADDR, vaddr);
  store<u16>(s + SVC_VPORT, vport);
  store<u8>(s + SVC_PROTO, proto);
  store<u8>(s + SVC_FLAGS, SVC_F_IN_USE);
  mapInsert(vaddr, serviceKey(proto, vport), idx);
  mapRef(vaddr, VIP_KEY, 1);
  return 0;
}

/** Control: removes service `idx` (its connections live on through their dests). */
export function serviceClear(idx: u32): i32 {
  if (idx >= maxServices) return -2;
  const s = svcAddr(idx);
  if (!(load<u8>(s + SVC_FLAGS) & SVC_F_IN_USE)) return -2;
  const vaddr = load<u32>(s + SVC_VADDR);
  const slot = mapFind(vaddr, serviceKey(load<u8>(s + SVC_PROTO), load<u16>(s + SVC_VPORT)));
  if (slot >= 0) mapDelete(<u32>slot);
  mapRef(vaddr, VIP_KEY, -1);
  memory.fill(s, 0, SVC_SIZE);
  return 0;
}

/**
 * Control: (re)defines dest `idx`. Counters are kept when the record is re-set for the same
 * server (an edit); the host zeroes a record it reuses for another server with destReset.
 */
export function destSet(idx: u32, service: u32, daddr: u32, dport: u16, upper: u16, lower: u16): i32 {
  if (idx >= maxDests) return -2;
  const d = destAddr(idx);
  let flags = load<u16>(d + DEST_FLAGS);
  if (flags & DEST_F_IN_USE) mapRef(load<u32>(d + DEST_DADDR), DEST_ADDR_KEY, -1);
  // As __ip_vs_update_dest: no upper threshold, or a higher one, lifts the overload.
  if (upper == 0 || upper > load<u16>(d + DEST_UPPER)) flags &= ~DEST_F_OVERLOAD;
  store<u32>(d + DEST_DADDR, daddr);
  store<u16>(d + DEST_DPORT, dport);
  store<u32>(d + DEST_SERVICE, service);
  store<u16>(d + DEST_UPPER, upper);
  store<u16>(d + DEST_LOWER, lower);
  store<u16>(d + DEST_FLAGS, (flags & DEST_F_OVERLOAD) | DEST_F_IN_USE | DEST_F_AVAILABLE);
  mapRef(daddr, DEST_ADDR_KEY, 1);
  return 0;
}

/** Control: dest `idx` is no longer a destination of its service (deleted); its record
 * stays while connections use it. */
export function destRetire(idx: u32): i32 {
  if (idx >= maxDests) return -2;
  const d = destAddr(idx);
  store<u16>(d + DEST_FLAGS, load<u16>(d + DEST_FLAGS) & ~DEST_F_AVAILABLE);
  return 0;
}

/**
 * After a connection is bound to or released from dest `d`, sets or lifts its overload as
 * ip_vs_bind_dest and ip_vs_unbind_dest do: set at the upper threshold; lifted below the
 * lower one, or, without one, below three quarters of the upper.
 */
export function destUpdateOverload(d: usize, bound: bool): void {
  const upper = <u32>load<u16>(d + DEST_UPPER);
  const lower = <u32>load<u16>(d + DEST_LOWER);
  const total = load<u32>(d + DEST_ACTIVE) + load<u32>(d + DEST_INACTIVE);
  const flags = load<u16>(d + DEST_FLAGS);
  if (bound) {
    if (upper != 0 && total >= upper) store<u16>(d + DEST_FLAGS, flags | DEST_F_OVERLOAD);
  } else if (flags & DEST_F_OVERLOAD) {
    const lift = lower != 0 ? total < lower : upper != 0 ? total * 4 < upper * 3 : true;
    if (lift) store<u16>(d + DEST_FLAGS, flags & ~DEST_F_OVERLOAD);
  }
}

/** Control: zeroes dest `idx`'s statistics (ipvsadm -Z); connection counts are state, kept. */
export function destZeroStats(idx: u32): i32 {
  if (idx >= maxDests) return -2;
  memory.fill(destAddr(idx) + DEST_CONNS, 0, DEST_STATS_END - DEST_CONNS);
  return 0;
}

/** Control: forgets dest `idx` entirely; the host only does this once it has no connections. */
export function destReset(idx: u32): i32 {
  if (idx >= maxDests) return -2;
  const d = destAddr(idx);
  if (load<u16>(d + DEST_FLAGS) & DEST_F_IN_USE) mapRef(load<u32>(d + DEST_DADDR), DEST_ADDR_KEY, -1);
  memory.fill(d, 0, DEST_SIZE);
  return 0;
}

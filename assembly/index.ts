// wasmvs data plane: the module's exports. Every export takes and returns integers
// (addresses, lengths, counts, codes); the host's typed view of them is host/engine/abi.ts.
import {
  ABI_VERSION, CONN_SIZE, CTRL_LINK_BASE, LINK_SIZE, COUNTER_SLOTS, CTRL_ABI_OFF, CTRL_CONN_BASE,
  CTRL_CONN_CAPACITY, CTRL_COUNTER_BASE, CTRL_DATA_BASE, CTRL_DESC_BASE, CTRL_DEST_BASE, CTRL_END,
  CTRL_FREE_HEAD, CTRL_SETTINGS, CTRL_RECORDS_USED, CTRL_BUMP_NEXT, CTRL_EVENT_WRITE,
  CTRL_EVENT_BASE, CTRL_EVENT_CAPACITY, CTRL_INDEX_BASE, CTRL_INDEX_SIZE, CTRL_MAGIC,
  CTRL_MAGIC_OFF, CTRL_MAX_DESTS, CTRL_MAX_SERVICES, CTRL_SIPKEY0, CTRL_SIPKEY1, CTRL_SIZE,
  CTRL_SLOT_COUNT, CTRL_SLOT_SIZE, CTRL_SVC_BASE, CTRL_SVCMAP_BASE, CTRL_SVCMAP_MASK,
  CTRL_TIMEOUT_BASE, CTRL_WHEEL_BASE, DESC_SIZE, DEST_SIZE, EVENT_SIZE, MAX_CONN_CAPACITY,
  MAX_DESTS_LIMIT, SVC_SIZE, SVCMAP_ENTRY_SIZE, TIMEOUT_SLOTS, WHEEL_SIZE, APP_SIZE, CTRL_APP_BASE,
  CTRL_FTP_PORTS, CTRL_NO_CPORT, CTRL_RESIZED, FTP_PORT_MAP_BYTES, CTRL_APP_KEYS, CTRL_APP_MASK, CTRL_APP_MAX,
  CTRL_APP_COUNT,
} from './layout';
import { checksumCompute } from './checksum';
import { expireDue } from './expire';
import { processRing, processSlot } from './pipeline';
import { CTRL, ftpPortsBase, loadRegions, slotCount, timeoutBase } from './regions';
import { DEFAULT_TIMEOUT_COUNT, DEFAULT_TIMEOUTS_MS } from './tcpstate';
import { sipHash13 } from './siphash';
import { wheelStart } from './timer';

export * from './layout';
// TCP state numbers are ABI too: connection records, events and the timeout table hold them.
export {
  TCP_S_CLOSE, TCP_S_CLOSE_WAIT, TCP_S_COUNT, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_LAST_ACK,
  TCP_S_LISTEN, TCP_S_NONE, TCP_S_SYNACK, TCP_S_SYN_RECV, TCP_S_SYN_SENT, TCP_S_TIME_WAIT, UDP_S_NORMAL,
} from './tcpstate';
export { serviceSet, serviceConfigure, serviceClear, destSet, destRetire, destReset, destZeroStats } from './service';

@inline function align64(x: usize): usize { return (x + 63) & ~(<usize>63); }
@inline function nextPow2(x: u32): u32 { return x <= 1 ? 1 : <u32>1 << (32 - clz<u32>(x - 1)); }

/** Address of the control block (host reads region offsets from it). */
export function controlBlock(): usize { return CTRL; }

/**
 * Plans the regions for the given sizes and records them in the control block. Returns
 * the end address (the memory must then be grown to cover it before init), or 0 when a
 * size is out of range. Memory must already hold the control block itself. `ftpSessions`:
 * how many FTP control connections the helper follows at once (0: no helper, ftp.ts).
 */
export function layout(connCapacity: u32, slots: u32, slotBytes: u32, maxServices: u32,
  maxDests: u32, eventCapacity: u32, ftpSessions: u32): usize {
  if (connCapacity == 0 || connCapacity > MAX_CONN_CAPACITY) return 0;
  if (slots == 0 || slotBytes < 64 || slotBytes > 0x10000 + 64 || (slotBytes & 63) != 0) return 0;
  if (maxServices == 0 || maxServices > 0x10000) return 0;
  if (maxDests == 0 || maxDests > MAX_DESTS_LIMIT) return 0;
  if (eventCapacity == 0 || (eventCapacity & (eventCapacity - 1)) != 0) return 0;
  if (ftpSessions > MAX_CONN_CAPACITY) return 0;
  const indexSlots = connCapacity * 4; // exactly: homes come from a multiply-shift, not a mask
  // Entries: services and VIPs (<= 2 x maxServices) and real-server addresses (<= maxDests),
  // at a load factor of at most 1/2.
  const mapSlots = nextPow2((maxServices * 2 + maxDests) * 2);
  let at: u64 = CTRL + CTRL_SIZE;
  at = align64(<usize>at);
  store<u32>(CTRL + CTRL_DESC_BASE, <u32>at); at += <u64>(slots + 1) * DESC_SIZE; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_DATA_BASE, <u32>at); at += <u64>(slots + 1) * slotBytes; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_CONN_BASE, <u32>at); at += <u64>connCapacity * CONN_SIZE; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_LINK_BASE, <u32>at); at += <u64>connCapacity * LINK_SIZE; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_INDEX_BASE, <u32>at); at += <u64>indexSlots * 4; at = align64(<usize>at);
  // The wheel's buckets, then its occupancy bitmap (one bit per bucket).
  store<u32>(CTRL + CTRL_WHEEL_BASE, <u32>at); at += <u64>WHEEL_SIZE * 4 + <u64>WHEEL_SIZE / 8; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_SVC_BASE, <u32>at); at += <u64>maxServices * SVC_SIZE; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_SVCMAP_BASE, <u32>at); at += <u64>mapSlots * SVCMAP_ENTRY_SIZE; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_DEST_BASE, <u32>at); at += <u64>maxDests * DEST_SIZE; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_EVENT_BASE, <u32>at); at += <u64>eventCapacity * EVENT_SIZE; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_COUNTER_BASE, <u32>at); at += <u64>COUNTER_SLOTS * 8; at = align64(<usize>at);
  store<u32>(CTRL + CTRL_TIMEOUT_BASE, <u32>at); at += <u64>TIMEOUT_SLOTS * 4;
  if (ftpSessions) {
    // Open addressing at a load of at most 1/2, as the connection index.
    const appSlots = nextPow2(ftpSessions * 2);
    at = align64(<usize>at);
    store<u32>(CTRL + CTRL_APP_KEYS, <u32>at); at += <u64>appSlots * 4; at = align64(<usize>at);
    store<u32>(CTRL + CTRL_APP_BASE, <u32>at); at += <u64>appSlots * APP_SIZE;
    store<u32>(CTRL + CTRL_FTP_PORTS, <u32>at); at += <u64>FTP_PORT_MAP_BYTES;
    store<u32>(CTRL + CTRL_APP_MASK, appSlots - 1);
  } else {
    store<u32>(CTRL + CTRL_APP_KEYS, 0);
    store<u32>(CTRL + CTRL_APP_BASE, 0);
    store<u32>(CTRL + CTRL_FTP_PORTS, 0);
    store<u32>(CTRL + CTRL_APP_MASK, 0);
  }
  store<u32>(CTRL + CTRL_APP_MAX, ftpSessions);
  if (at >= 0xffff0000) return 0;
  store<u32>(CTRL + CTRL_END, <u32>at);
  store<u32>(CTRL + CTRL_CONN_CAPACITY, connCapacity);
  store<u32>(CTRL + CTRL_INDEX_SIZE, indexSlots);
  store<u32>(CTRL + CTRL_SLOT_COUNT, slots);
  store<u32>(CTRL + CTRL_SLOT_SIZE, slotBytes);
  store<u32>(CTRL + CTRL_MAX_SERVICES, maxServices);
  store<u32>(CTRL + CTRL_SVCMAP_MASK, mapSlots - 1);
  store<u32>(CTRL + CTRL_MAX_DESTS, maxDests);
  store<u32>(CTRL + CTRL_EVENT_CAPACITY, eventCapacity);
  return <usize>at;
}

/**
 * Initialises the planned regions (memory grown to the end address first): everything
 * zeroed, the SipHash key set, default timeouts. The key comes from the host's CSPRNG.
 */
export function init(key0lo: u32, key0hi: u32, key1lo: u32, key1hi: u32): void {
  const start = CTRL + CTRL_SIZE;
  memory.fill(start, 0, <usize>load<u32>(CTRL + CTRL_END) - start);
  // The shared mutable state in the control block starts from zero too.
  store<u32>(CTRL + CTRL_FREE_HEAD, 0);
  store<u32>(CTRL + CTRL_BUMP_NEXT, 0);
  memory.fill(CTRL + CTRL_EVENT_WRITE, 0, CTRL_RECORDS_USED + 4 - CTRL_EVENT_WRITE);
  store<u32>(CTRL + CTRL_NO_CPORT, 0);
  store<u32>(CTRL + CTRL_RESIZED, 0);
  store<u32>(CTRL + CTRL_APP_COUNT, 0);
  store<u64>(CTRL + CTRL_SIPKEY0, <u64>key0lo | (<u64>key0hi << 32));
  store<u64>(CTRL + CTRL_SIPKEY1, <u64>key1lo | (<u64>key1hi << 32));
  store<u32>(CTRL + CTRL_MAGIC_OFF, CTRL_MAGIC);
  store<u32>(CTRL + CTRL_ABI_OFF, ABI_VERSION);
  loadRegions();
  memory.copy(timeoutBase, DEFAULT_TIMEOUTS_MS, DEFAULT_TIMEOUT_COUNT * 4);
}

/**
 * Another instance over the same memory (a worker) picks up the regions. 1 if valid. The data
 * plane is single-writer: records, index, wheel and counters are updated without atomics, so
 * only one instance at a time may call process, expire or a configuration function.
 */
export function attach(): u32 {
  if (load<u32>(CTRL + CTRL_MAGIC_OFF) != CTRL_MAGIC || load<u32>(CTRL + CTRL_ABI_OFF) != ABI_VERSION) return 0;
  loadRegions();
  return 1;
}

/** Processes `count` ring slots from `start` (wrapping) at time `now` (ms). Returns forwards. */
export function process(start: u32, count: u32, now: u32): u32 {
  return processRing(start, count, now);
}

/** Processes the scratch slot (index slotCount, outside the ring): one packet, for the host's
 * convenience call. Returns the verdict. */
export function processScratch(now: u32): u32 {
  wheelStart(now);
  return processSlot(slotCount, now);
}

/**
 * Expires connections whose time has come, handling at most `budget` records. Returns 1
 * when there is more to do (call again), 0 when the wheel has caught up with `now`.
 */
export function expire(now: u32, budget: u32): u32 {
  return expireDue(now, budget);
}

/**
 * Binds the FTP helper to virtual TCP port `port` (on = 1) or unbinds it, as ip_vs_ftp's
 * `ports` parameter. Connections opened after the call follow it. 1 if done, 0 when the
 * engine was laid out without the helper.
 */
export function ftpPortSet(port: u32, on: u32): u32 {
  if (ftpPortsBase == 0 || port > 0xffff) return 0;
  const byte = ftpPortsBase + (port >> 3);
  const bit = <u8>(1 << <u8>(port & 7));
  store<u8>(byte, on ? load<u8>(byte) | bit : load<u8>(byte) & ~bit);
  return 1;
}

/** Sets the SETTING_* switches (expire_nodest_conn ...). */
export function setSettings(bits: u32): void {
  store<u32>(CTRL + CTRL_SETTINGS, bits);
}

/** Sets the timeout of a state slot (TCP states 0..10, UDP 11), in milliseconds. */
export function setTimeout(slot: u32, ms: u32): u32 {
  if (slot >= TIMEOUT_SLOTS) return 0;
  store<u32>(timeoutBase + (slot << 2), ms);
  return 1;
}

/** Full Internet checksum of `len` bytes at `ptr` (tests and generated packets only). */
export function checksum(ptr: usize, len: u32): u32 {
  return checksumCompute(ptr, len, 0);
}

/** SipHash-1-3 as the connection index uses it (tests check it against reference vectors). */
export function sipHash(k0: u64, k1: u64, m0: u64, tail: u64, len: u32): u64 {
  return sipHash13(k0, k1, m0, tail, len);
}

// This instance's copy of the region addresses, loaded from the control block by attach().
// Each instance (main thread, each TUN worker) has its own globals over one shared memory;
// the shared mutable state itself stays in the control block (layout.ts).
import {
  CTRL_CONN_BASE, CTRL_CONN_CAPACITY, CTRL_COUNTER_BASE, CTRL_DESC_BASE, CTRL_DATA_BASE,
  CTRL_DEST_BASE, CTRL_LINK_BASE, CTRL_EVENT_BASE, CTRL_EVENT_CAPACITY, CTRL_INDEX_BASE, CTRL_INDEX_SIZE,
  CTRL_MAX_DESTS, CTRL_MAX_SERVICES, CTRL_SIPKEY0, CTRL_SIPKEY1, CTRL_SLOT_COUNT,
  CTRL_SLOT_SIZE, CTRL_SVC_BASE, CTRL_SVCMAP_BASE, CTRL_SVCMAP_MASK, CTRL_TIMEOUT_BASE,
  CTRL_WHEEL_BASE, CTRL_APP_BASE, CTRL_APP_KEYS, CTRL_APP_MASK, CTRL_APP_MAX, CTRL_FTP_PORTS, COUNTER_DROP_BASE, COUNTER_PASS_BASE, COUNTER_DROP, COUNTER_PASS, COUNTER_LOCAL, COUNTER_LOCAL_BASE,
} from './layout';

/** The control block sits at the first 64-byte boundary above the module's heap base. */
export const CTRL: usize = (__heap_base + 63) & ~(<usize>63);

export let descBase: usize = 0;
export let dataBase: usize = 0;
export let slotCount: u32 = 0;
export let slotSize: u32 = 0;
export let connBase: usize = 0;
export let connCapacity: u32 = 0;
export let linkBase: usize = 0;
export let indexBase: usize = 0;
export let indexSize: u32 = 0;
export let wheelBase: usize = 0;
export let svcBase: usize = 0;
export let maxServices: u32 = 0;
export let svcMapBase: usize = 0;
export let svcMapMask: u32 = 0;
export let destBase: usize = 0;
export let maxDests: u32 = 0;
export let eventBase: usize = 0;
export let eventCapacity: u32 = 0;
export let counterBase: usize = 0;
export let timeoutBase: usize = 0;
/** The FTP helper's table (keys, states), its size, and its port bitmap; 0 when it is off. */
export let appBase: usize = 0;
export let appKeys: usize = 0;
export let appMask: u32 = 0;
export let appMax: u32 = 0;
export let ftpPortsBase: usize = 0;
export let sipKey0: u64 = 0;
export let sipKey1: u64 = 0;

export function loadRegions(): void {
  descBase = load<u32>(CTRL + CTRL_DESC_BASE);
  dataBase = load<u32>(CTRL + CTRL_DATA_BASE);
  slotCount = load<u32>(CTRL + CTRL_SLOT_COUNT);
  slotSize = load<u32>(CTRL + CTRL_SLOT_SIZE);
  connBase = load<u32>(CTRL + CTRL_CONN_BASE);
  connCapacity = load<u32>(CTRL + CTRL_CONN_CAPACITY);
  linkBase = load<u32>(CTRL + CTRL_LINK_BASE);
  indexBase = load<u32>(CTRL + CTRL_INDEX_BASE);
  indexSize = load<u32>(CTRL + CTRL_INDEX_SIZE);
  wheelBase = load<u32>(CTRL + CTRL_WHEEL_BASE);
  svcBase = load<u32>(CTRL + CTRL_SVC_BASE);
  maxServices = load<u32>(CTRL + CTRL_MAX_SERVICES);
  svcMapBase = load<u32>(CTRL + CTRL_SVCMAP_BASE);
  svcMapMask = load<u32>(CTRL + CTRL_SVCMAP_MASK);
  destBase = load<u32>(CTRL + CTRL_DEST_BASE);
  maxDests = load<u32>(CTRL + CTRL_MAX_DESTS);
  eventBase = load<u32>(CTRL + CTRL_EVENT_BASE);
  eventCapacity = load<u32>(CTRL + CTRL_EVENT_CAPACITY);
  counterBase = load<u32>(CTRL + CTRL_COUNTER_BASE);
  timeoutBase = load<u32>(CTRL + CTRL_TIMEOUT_BASE);
  appBase = load<u32>(CTRL + CTRL_APP_BASE);
  appKeys = load<u32>(CTRL + CTRL_APP_KEYS);
  appMask = load<u32>(CTRL + CTRL_APP_MASK);
  appMax = load<u32>(CTRL + CTRL_APP_MAX);
  ftpPortsBase = load<u32>(CTRL + CTRL_FTP_PORTS);
  sipKey0 = load<u64>(CTRL + CTRL_SIPKEY0);
  sipKey1 = load<u64>(CTRL + CTRL_SIPKEY1);
}

// ---- counters: one u64 array with named offsets ----------------------------------------
@inline export function count(counter: u32): void {
  const p = counterBase + (counter << 3);
  store<u64>(p, load<u64>(p) + 1);
}
@inline export function countDrop(reason: u16): void { count(COUNTER_DROP); count(COUNTER_DROP_BASE + reason); }
@inline export function countPass(reason: u16): void { count(COUNTER_PASS); count(COUNTER_PASS_BASE + reason); }
@inline export function countLocal(reason: u16): void { count(COUNTER_LOCAL); count(COUNTER_LOCAL_BASE + reason); }

/** Adds to a u32 (a dest's connection counts) or a u64 (its statistics) in place. */
@inline export function add32(p: usize, delta: i32): void { store<u32>(p, load<u32>(p) + delta); }
@inline export function add64(p: usize, delta: u64): void { store<u64>(p, load<u64>(p) + delta); }

@inline export function timeoutMs(slot: u32): u32 { return load<u32>(timeoutBase + (slot << 2)); }

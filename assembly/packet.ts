// The packet being handled, and what the data plane decides for it.
//
// The per-packet path used to hand the packet's facts down its call chain as arguments (ten
// and fourteen of them at the deepest). They are the same for every function that handles one
// packet, so they live here instead, as the kernel keeps them in one struct ip_vs_iphdr per
// packet: set once by packetBegin (pipeline.ts, pass 4) before the packet is handled, read by
// whatever handles it. The results (reason, connection, flags) are collected beside them and
// written to the packet's descriptor when it is done.
//
// One packet at a time: the data plane is single-writer (index.ts attach()), and nothing that
// runs while a packet is handled (expiry of due records, the scheduler call to the host)
// handles another packet. Plain globals: no allocation, nothing to free.
import { DESC_F_CSUM_PARTIAL, VERDICT_DROP, VERDICT_LOCAL, VERDICT_PASS } from './layout';
import { countDrop, countLocal, countPass } from './regions';
import { IPPROTO_TCP, ipv4HeaderLen, ipv4Protocol, ipv4TotalLen } from './wire/ipv4';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, tcpFlags } from './wire/tcp';

// ---- the packet ---------------------------------------------------------------------------
/** Its IPv4 header. */
export let pkt: usize = 0;
/** Its TCP/UDP (or ICMP) header. */
export let pktL4: usize = 0;
/** IPv4 total length: the bytes the statistics count. */
export let pktTotal: u32 = 0;
export let pktProto: u8 = 0;
export let pktIsTcp: bool = false;
/** TCP flags (0 for UDP). */
export let pktTcpFlags: u8 = 0;
/** Its TCP/UDP checksum holds a partial pseudo-header sum (virtio_net_hdr NEEDS_CSUM). */
export let pktPartial: bool = false;
/** Its tuple hash (pass 1), by which its connection is looked up. */
export let pktHash: u64 = 0;
/** Engine time, ms. */
export let pktNow: u32 = 0;
/** Bytes of its slot from its IPv4 header on: how far the FTP helper may grow it. */
export let pktRoom: u32 = 0;

/**
 * Takes up a validated packet: the header at `p` with `room` bytes of slot from there on,
 * its tuple hash `h`, at time `now`.
 */
export function packetBegin(p: usize, room: u32, partial: bool, h: u64, now: u32): void {
  const proto = ipv4Protocol(p);
  pkt = p;
  pktL4 = p + ipv4HeaderLen(p);
  pktTotal = ipv4TotalLen(p);
  pktProto = proto;
  pktIsTcp = proto == IPPROTO_TCP;
  pktTcpFlags = proto == IPPROTO_TCP ? tcpFlags(pktL4) : <u8>0;
  pktPartial = partial;
  pktHash = h;
  pktNow = now;
  pktRoom = room;
}

/** A SYN that opens a connection: SYN without ACK, RST or FIN. */
@inline export function isOpeningSyn(flags: u8): bool {
  return (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN;
}

// ---- its results, written to its descriptor by pipeline.ts writeResult -----------------------
/** The drop, pass or local reason (0: none). */
export let outReason: u16 = 0;
/** Its connection's record number + 1 (0: none). */
export let outConn: u32 = 0;
/** DESC_F_* flags: CSUM_PARTIAL as it came, REPLY, NEW_CONN. */
export let outFlags: u8 = 0;
/** Its new IPv4 total length when the FTP helper resized it (0: unchanged). */
export let outTotal: u32 = 0;

/** Clears the results; the descriptor's CSUM_PARTIAL flag is kept as it came. */
@inline export function resultBegin(descFlags: u8): void {
  outReason = 0;
  outConn = 0;
  outTotal = 0;
  outFlags = descFlags & DESC_F_CSUM_PARTIAL;
}
@inline export function resultResized(total: u32): void { outTotal = total; }
@inline export function resultConn(idx: u32): void { outConn = idx + 1; }
@inline export function resultFlag(flag: u8): void { outFlags |= flag; }

// The verdicts that carry a reason: counted, the reason kept, the verdict returned.
@inline export function drop(reason: u16): u8 { countDrop(reason); outReason = reason; return VERDICT_DROP; }
@inline export function pass(reason: u16): u8 { countPass(reason); outReason = reason; return VERDICT_PASS; }
@inline export function local(reason: u16): u8 { countLocal(reason); outReason = reason; return VERDICT_LOCAL; }

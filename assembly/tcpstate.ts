// The IPVS TCP state machine, as a table (net/netfilter/ipvs/ip_vs_proto_tcp.c, tcp_states,
// the normal, non-"secure_tcp" table). A NAT director sees both directions, so only the
// INPUT and OUTPUT parts apply (INPUT-ONLY is for DR/TUN connections).
//
// Event of a segment (tcp_state_idx): RST first, then SYN, FIN, ACK; a segment with none of
// them is no event, and the kernel then moves the connection to CLOSE (set_tcp_state starts
// from new_state = CLOSE). Worked example, a client's handshake and close through the
// director: SYN in NONE -> SYN_RECV; SYN+ACK out stays SYN_RECV; ACK in -> ESTABLISHED;
// FIN in -> CLOSE_WAIT; FIN out -> TIME_WAIT; ACK in stays TIME_WAIT (120 s).
import { TIMEOUT_UDP } from './layout';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './wire/tcp';

export const TCP_S_NONE: u8 = 0;
export const TCP_S_ESTABLISHED: u8 = 1;
export const TCP_S_SYN_SENT: u8 = 2;
export const TCP_S_SYN_RECV: u8 = 3;
export const TCP_S_FIN_WAIT: u8 = 4;
export const TCP_S_TIME_WAIT: u8 = 5;
export const TCP_S_CLOSE: u8 = 6;
export const TCP_S_CLOSE_WAIT: u8 = 7;
export const TCP_S_LAST_ACK: u8 = 8;
export const TCP_S_LISTEN: u8 = 9;
export const TCP_S_SYNACK: u8 = 10;
export const TCP_S_COUNT: u8 = 11;
export const UDP_S_NORMAL: u8 = 0;

const sNO: u8 = 0, sES: u8 = 1, sSS: u8 = 2, sSR: u8 = 3, sFW: u8 = 4, sTW: u8 = 5,
  sCL: u8 = 6, sCW: u8 = 7, sLA: u8 = 8, sLI: u8 = 9, sSA: u8 = 10;

const TCP_EVENT_SYN: u32 = 0;
const TCP_EVENT_FIN: u32 = 1;
const TCP_EVENT_ACK: u32 = 2;
const TCP_EVENT_RST: u32 = 3;
const TCP_EVENT_NONE: u32 = 4;

// [direction (0 input, 1 output)][event][state] -> next state. Read-only static data.
const TCP_STATES = memory.data<u8>([
  //        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA      INPUT
  /*syn*/   sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR,
  /*fin*/   sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW,
  /*ack*/   sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  /*rst*/   sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR,
  //        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA      OUTPUT
  /*syn*/   sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR,
  /*fin*/   sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW,
  /*ack*/   sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES,
  /*rst*/   sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL,
]);

@inline function tcpEvent(flags: u8): u32 {
  if (flags & TCP_RST) return TCP_EVENT_RST;
  if (flags & TCP_SYN) return TCP_EVENT_SYN;
  if (flags & TCP_FIN) return TCP_EVENT_FIN;
  if (flags & TCP_ACK) return TCP_EVENT_ACK;
  return TCP_EVENT_NONE;
}

/** Next state of a connection in `state` after a segment with `flags` in direction `dir`. */
export function tcpNextState(state: u8, flags: u8, dir: u32): u8 {
  const event = tcpEvent(flags);
  if (event == TCP_EVENT_NONE) return sCL;
  return load<u8>(TCP_STATES + (dir * 4 + event) * <u32>TCP_S_COUNT + <u32>state);
}

/** Timeout slot of a state: TCP states index directly, UDP has its own slot. */
@inline export function timeoutSlot(isUdp: bool, state: u8): u32 {
  return isUdp ? TIMEOUT_UDP : <u32>state;
}

// Defaults in milliseconds (ip_vs_proto_tcp.c tcp_timeouts, ip_vs_proto_udp.c udp_timeouts),
// i.e. what `ipvsadm --set 900 120 300` sets.
export const DEFAULT_TIMEOUTS_MS = memory.data<u32>([
  2 * 1000, //    NONE
  900 * 1000, //  ESTABLISHED  (ipvsadm --set tcp)
  120 * 1000, //  SYN_SENT
  60 * 1000, //   SYN_RECV
  120 * 1000, //  FIN_WAIT     (ipvsadm --set tcpfin)
  120 * 1000, //  TIME_WAIT
  10 * 1000, //   CLOSE
  60 * 1000, //   CLOSE_WAIT
  30 * 1000, //   LAST_ACK
  120 * 1000, //  LISTEN
  120 * 1000, //  SYNACK
  300 * 1000, //  UDP          (ipvsadm --set udp)
]);
export const DEFAULT_TIMEOUT_COUNT: u32 = 12;

// Linear memory layout: the one written-down ABI between the data plane and the host.
// host/abi.ts mirrors every exported constant here; test/abi.test.ts checks that they agree.
//
// Memory is carved into fixed regions once, by layout(), above the module's own heap base
// (which differs between debug and release builds, so nothing here hard-codes an address):
//
//   heap base (aligned 64)
//   +------------------+ CTRL      control block: region offsets, sizes, shared mutable state
//   | control  256 B   |
//   +------------------+ descBase  one 16-byte descriptor per ring slot (+1 scratch slot)
//   | descriptors      |
//   +------------------+ dataBase  slot data, slotSize bytes each, 64-byte aligned
//   | slot data        |
//   +------------------+ connBase  connection records, CONN_SIZE each (one per half cache line)
//   | connections      |
//   +------------------+ linkBase  links of each record (wheel, persistence), LINK_SIZE each
//   | conn links       |
//   +------------------+ indexBase connection index: u32 per slot, 4 x capacity
//   | conn index       |
//   +------------------+ wheelBase timer wheel: u32 list head per millisecond tick, then one
//   | timer wheel      |           occupancy bit per bucket (set = its list is not empty)
//   +------------------+ svcBase   service records, SVC_SIZE each
//   | services         |
//   +------------------+ svcMapBase service/VIP map, SVCMAP_ENTRY_SIZE each
//   | service map      |
//   +------------------+ destBase  real-server records, DEST_SIZE each
//   | dests            |
//   +------------------+ eventBase event ring, EVENT_SIZE each
//   | events           |
//   +------------------+ counterBase u64 counters, COUNTER_SLOTS of them
//   | counters         |
//   +------------------+ timeoutBase u32 milliseconds per state, TIMEOUT_SLOTS of them
//   | timeouts         |
//   +------------------+ appKeys   FTP helper: its table's keys (u32 per slot), states
//   | FTP helper       | appBase   (APP_SIZE per slot), port bitmap (FTP_PORT_MAP_BYTES);
//   |                  |           absent without ftpPorts
//   +------------------+ endAddr
//
// Mutable state every instance must share (free list, wheel position, event cursor) lives in
// the control block, not in WASM globals: each instance (main thread, TUN workers) has its own
// globals over the one shared memory.

export const ABI_VERSION: u32 = 2;
export const CTRL_MAGIC: u32 = 0x31535657; // "WVS1" little-endian

// ---- control block ----------------------------------------------------------------------
export const CTRL_SIZE: u32 = 256;
export const CTRL_MAGIC_OFF: u32 = 0;
export const CTRL_ABI_OFF: u32 = 4;
export const CTRL_CONN_CAPACITY: u32 = 8;
export const CTRL_INDEX_SIZE: u32 = 12;
export const CTRL_SLOT_COUNT: u32 = 16;
export const CTRL_SLOT_SIZE: u32 = 20;
export const CTRL_MAX_SERVICES: u32 = 24;
export const CTRL_MAX_DESTS: u32 = 28;
export const CTRL_EVENT_CAPACITY: u32 = 32;
export const CTRL_FREE_HEAD: u32 = 36; //   free conn list (index + 1, 0 = empty), linked by timerNext
export const CTRL_BUMP_NEXT: u32 = 40; //   first never-used conn record
export const CTRL_DESC_BASE: u32 = 44;
export const CTRL_DATA_BASE: u32 = 48;
export const CTRL_CONN_BASE: u32 = 52;
export const CTRL_INDEX_BASE: u32 = 56;
export const CTRL_WHEEL_BASE: u32 = 60;
export const CTRL_SVC_BASE: u32 = 64;
export const CTRL_SVCMAP_BASE: u32 = 68;
export const CTRL_SVCMAP_MASK: u32 = 72;
export const CTRL_DEST_BASE: u32 = 76;
export const CTRL_EVENT_BASE: u32 = 80;
export const CTRL_COUNTER_BASE: u32 = 84;
export const CTRL_TIMEOUT_BASE: u32 = 88;
export const CTRL_END: u32 = 92;
// Shared mutable state, CTRL_EVENT_WRITE up to CTRL_RECORDS_USED: zeroed by init().
export const CTRL_EVENT_WRITE: u32 = 96; //  events written, ever (wraps at 2^32)
export const CTRL_EVENT_READ: u32 = 100; //  events drained by the host, ever
export const CTRL_EVENT_MASK: u32 = 104; //  bit (1 << EVENT_*) set = someone listens
export const CTRL_WHEEL_TICK: u32 = 108; //  last fully processed tick
export const CTRL_WHEEL_STARTED: u32 = 112;
export const CTRL_LIVE_CONNS: u32 = 116; //  connections in the index (not yet expired)
export const CTRL_RECORDS_USED: u32 = 120; // records not on the free list
export const CTRL_LINK_BASE: u32 = 124;
export const CTRL_SETTINGS: u32 = 144; //   SETTING_* bits (the host's sysctl-like switches)
export const SETTING_EXPIRE_NODEST_CONN: u32 = 1; // as net.ipv4.vs.expire_nodest_conn
export const CTRL_SIPKEY0: u32 = 128; //     u64, SipHash key, random per engine
export const CTRL_SIPKEY1: u32 = 136; //     u64
// The FTP helper (ftp.ts): its regions, 0 when the engine runs without it (ftpPorts empty).
export const CTRL_APP_BASE: u32 = 148; //    helper states, APP_SIZE each, one per table slot
export const CTRL_FTP_PORTS: u32 = 152; //   one bit per virtual port the helper binds to (8 KiB)
export const CTRL_NO_CPORT: u32 = 156; //    live connections with client port 0 (not yet known)
export const CTRL_RESIZED: u32 = 160; //     packets the FTP helper resized, ever (wraps at 2^32):
//                                           the host rereads slot lengths only after a batch that did
export const CTRL_APP_KEYS: u32 = 164; //    helper table: u32 per slot, its control connection + 1
export const CTRL_APP_MASK: u32 = 168; //    slots - 1 (a power of two, twice the sessions at least)
export const CTRL_APP_MAX: u32 = 172; //     control connections the helper follows at once
export const CTRL_APP_COUNT: u32 = 176; //   of them, now

// ---- ring slot descriptor (16 bytes) ----------------------------------------------------
//   0        4        6     7        8        10       12               16
//   +--------+--------+-----+--------+--------+--------+----------------+
//   | len u32|l3off16 |flag8|verdict8|reason16|hash.hi | conn u32       |
//   +--------+--------+-----+--------+--------+--------+----------------+
// len: bytes in the slot from its start (link header, if any, included). l3off: where the
// IPv4 header starts. flags in: DESC_F_CSUM_PARTIAL (vnet_hdr NEEDS_CSUM: the L4 checksum
// field holds the uncomplemented pseudo-header sum). Out: verdict, reason, conn (index + 1).
// During a batch, hash.hi and conn hold the packet's tuple hash between passes (nat.ts).
export const DESC_SIZE: u32 = 16;
export const DESC_LEN: u32 = 0;
export const DESC_L3OFF: u32 = 4;
export const DESC_FLAGS: u32 = 6;
export const DESC_VERDICT: u32 = 7;
export const DESC_REASON: u32 = 8;
export const DESC_HASH_HI: u32 = 10;
export const DESC_CONN: u32 = 12;
export const DESC_F_CSUM_PARTIAL: u8 = 1;
export const DESC_F_REPLY: u8 = 2; //   out: the direction was real server -> client
export const DESC_F_NEW_CONN: u8 = 4; // out: this packet created its connection

export const VERDICT_NONE: u8 = 0;
export const VERDICT_FORWARD: u8 = 1; // rewritten in place, send it on
export const VERDICT_PASS: u8 = 2; //    not ours, unchanged, send it on
export const VERDICT_DROP: u8 = 3; //    dropped, reason says why
export const VERDICT_REPLY: u8 = 4; //   reserved: the slot now holds a generated reply
export const VERDICT_LOCAL: u8 = 5; //   addressed to a VIP but served by no service: the
//                                       director answers it as a host would (RST, ICMP)

// Local reasons (why a packet to a VIP was none of a service's): what a host with that
// address would answer, as the kernel's tcp_v4_send_reset, icmp_send(PORT/PROT_UNREACH) and
// icmp_echo. Counted as COUNTER_LOCAL_BASE + reason.
export const LOCAL_NO_SERVICE: u16 = 1; // TCP or UDP to a port no service of that protocol serves
export const LOCAL_ICMP: u16 = 2; //       ICMP that is not an error we translate (echo request ...)
export const LOCAL_PROTOCOL: u16 = 3; //   neither TCP, UDP nor ICMP
export const LOCAL_REASON_COUNT: u16 = 4;

// Pass reasons (why a packet was none of ours).
export const PASS_NOT_IPV4: u16 = 1; //   IPv6: not handled yet, routed unchanged
export const PASS_PROTOCOL: u16 = 2; //   not to a VIP: neither TCP nor UDP, or ICMP that is no error of ours
export const PASS_NO_MATCH: u16 = 3; //   no connection, not addressed to a VIP

// Drop reasons: every rejection has its own code (and counter COUNTER_DROP_BASE + code).
export const DROP_BAD_SLOT: u16 = 1; //        descriptor len/l3off do not fit the slot
export const DROP_SHORT_PACKET: u16 = 2; //    fewer bytes than a minimal IPv4 header
export const DROP_BAD_VERSION: u16 = 3; //     IP version neither 4 nor 6
export const DROP_BAD_IHL: u16 = 4; //         IHL < 5
export const DROP_TRUNCATED: u16 = 5; //       header or total length beyond the bytes present
export const DROP_BAD_TOTAL_LENGTH: u16 = 6; // total length < header length
export const DROP_BAD_IP_CHECKSUM: u16 = 7;
export const DROP_FRAGMENT: u16 = 8; //        non-first fragment (no reassembly yet)
export const DROP_TCP_TRUNCATED: u16 = 9; //   fewer than 20 bytes of TCP header
export const DROP_BAD_TCP_DOFF: u16 = 10; //   data offset < 5 or beyond the segment
export const DROP_UDP_TRUNCATED: u16 = 11; //  fewer than 8 bytes of UDP header
export const DROP_BAD_UDP_LENGTH: u16 = 12; // UDP length < 8 or beyond the datagram
export const DROP_NO_CONN: u16 = 13; //        TCP non-SYN for no connection
export const DROP_NO_DEST: u16 = 14; //        the scheduler found no available real server
export const DROP_TABLE_FULL: u16 = 15; //     connection table full
export const DROP_TUPLE_CLASH: u16 = 16; //    the new connection's tuple is another's reply tuple
export const DROP_DEST_GONE: u16 = 17; //      its real server was deleted; expire_nodest_conn is on
export const DROP_ICMP_TRUNCATED: u16 = 18; // ICMP header, quoted IP header or quoted ports cut short
export const DROP_BAD_ICMP_CHECKSUM: u16 = 19;
export const DROP_ICMP_NO_CONN: u16 = 20; //   an ICMP error about one of ours with no connection
export const DROP_SCHEDULER_ERROR: u16 = 21; // the host's scheduler failed (threw) for this packet
export const DROP_REASON_COUNT: u16 = 22;

// What the host's schedule() import returns besides a dest index.
export const SCHEDULE_NONE: i32 = -1; //  no real server available (DROP_NO_DEST)
export const SCHEDULE_ERROR: i32 = -2; // the scheduler threw (DROP_SCHEDULER_ERROR)

// ---- connection record (32 bytes) and its links (LINK_SIZE, 16 bytes) ------------------
//   0       4       8       12    14    16    18   19   20    22    24      28      32
//   +-------+-------+-------+-----+-----+-----+----+----+-----+-----+-------+-------+
//   | caddr | vaddr | daddr |cport|vport|dport|prot|stat|flags|dest |expires|t.tick |
//   +-------+-------+-------+-----+-----+-----+----+----+-----+-----+-------+-------+
// Everything a packet needs, in one 32-byte record that never straddles a cache line: at a
// million connections each packet then misses on one record line and one index line.
// Addresses and ports in wire order. expires: engine milliseconds (wrapping u32, compared
// as a signed difference). t.tick: the tick of the timer-wheel bucket the record is linked
// in. The links sit in a parallel array, off the per-packet path:
//   0        4        8         12        16
//   +--------+--------+---------+---------+
//   | prev   | next   | control | nControl|
//   +--------+--------+---------+---------+
// prev/next: the records (+ 1) before and after it in its wheel bucket; for a free record, next
// is the next free one. control: the persistence template (+ 1) a connection was scheduled by;
// for a template, its own timeout in ms (LINK_TIMEOUT), as IPVS's cp->timeout.
// nControl: for a template, how many connections it controls (it outlives its timeout while
// any do, as IPVS's cp->n_control).
//
// A persistence template (-p) is a record too, flagged CONN_F_TEMPLATE: caddr is the client
// address under the service's netmask, cport 0, vport the service's port (0 for a port-zero
// service), daddr/dport its real server, proto the protocol | TEMPLATE_PROTO_BIT so that no
// packet's tuple can ever match it. Only its request tuple is indexed.
export const CONN_SIZE: u32 = 32;
export const CONN_CADDR: u32 = 0;
export const CONN_VADDR: u32 = 4;
export const CONN_DADDR: u32 = 8;
export const CONN_CPORT: u32 = 12;
export const CONN_VPORT: u32 = 14;
export const CONN_DPORT: u32 = 16;
export const CONN_PROTO: u32 = 18;
export const CONN_STATE: u32 = 19;
export const CONN_FLAGS: u32 = 20;
export const CONN_DEST: u32 = 22;
export const CONN_EXPIRES: u32 = 24;
export const CONN_TTICK: u32 = 28;
export const LINK_SIZE: u32 = 16;
export const LINK_PREV: u32 = 0;
export const LINK_NEXT: u32 = 4;
export const LINK_CONTROL: u32 = 8;
export const LINK_TIMEOUT: u32 = 8; // the same word, in a template
export const LINK_N_CONTROL: u32 = 12;
export const TEMPLATE_PROTO_BIT: u8 = 0x80;
export const CONN_F_HASHED: u16 = 1; //   in the index: a live connection
export const CONN_F_INACTIVE: u16 = 2; // counted in the dest's inactConns (else activeConns)
export const CONN_F_TIMER: u16 = 4; //    linked in the timer wheel
export const CONN_F_TEMPLATE: u16 = 8; // a persistence template, not a connection
export const CONN_F_APP: u16 = 16; //     an FTP control connection: the helper sees its packets
export const CONN_F_NO_CPORT: u16 = 32; // client port not known yet (passive FTP data), indexed with 0
export const CONN_F_ZOMBIE: u16 = 64; //  released while it still controls connections: the
//                                        record is freed with the last of them
export const MAX_CONN_CAPACITY: u32 = 0xffffff; // index entries hold index + 1 in 24 bits

// Connection index entry (u32): | tag 7 | dir 1 | conn index + 1 (24) |, 0 = empty.
export const INDEX_REF_MASK: u32 = 0xffffff;
export const INDEX_DIR_BIT: u32 = 0x1000000; // set: the entry is the reply (real server) tuple

// ---- FTP helper state (ftp.ts): one APP_SIZE record per control connection it follows ------
// In a table of its own, open addressing keyed by the control connection's record number + 1
// (CTRL_APP_KEYS), so that only FTP control connections pay for it, not every connection:
//   0      2      4          8        12              16
//   +------+------+----------+--------+---------------+
//   |flags | -    | init_seq | delta  | previous_delta|
//   +------+------+----------+--------+---------------+
// As IPVS's struct ip_vs_seq for the server -> client direction (cp->out_seq), host order:
// the only direction whose length the helper changes in NAT mode. flags: APP_F_*.
export const APP_SIZE: u32 = 16;
export const APP_FLAGS: u32 = 0;
export const APP_INIT_SEQ: u32 = 4;
export const APP_DELTA: u32 = 8;
export const APP_PREV_DELTA: u32 = 12;
export const APP_F_PASV: u16 = 1; //    armed by PASV/EPSV: the next 227/229 reply is parsed
export const APP_F_OUT_SEQ: u16 = 2; // init_seq/delta hold a rewrite (IP_VS_CONN_F_OUT_SEQ)
export const FTP_PORT_MAP_BYTES: u32 = 8192;

// ---- timer wheel --------------------------------------------------------------------------
export const WHEEL_BITS: u32 = 16; // one bucket per millisecond, 65.536 s around
export const WHEEL_SIZE: u32 = 1 << WHEEL_BITS;

// ---- service record (16 bytes) and service map ----------------------------------------------
//   0       4     6    7    8       12      16
//   +-------+-----+----+----+-------+-------+
//   | vaddr |vport|prot|flag|netmask|ptime  |
//   +-------+-----+----+----+-------+-------+
// netmask (wire order) and ptime (ms): persistence (-p, -M), used when flags has PERSISTENT.
// Flags are set together by serviceConfigure.
export const SVC_SIZE: u32 = 16;
export const SVC_VADDR: u32 = 0;
export const SVC_VPORT: u32 = 4;
export const SVC_PROTO: u32 = 6;
export const SVC_FLAGS: u32 = 7;
export const SVC_NETMASK: u32 = 8;
export const SVC_PTIMEOUT: u32 = 12;
export const SVC_F_IN_USE: u8 = 1;
export const SVC_F_PERSISTENT: u8 = 2;
export const SVC_F_ONE_PACKET: u8 = 4; // -o: UDP, every datagram scheduled, no connection kept
// Map entry: key a (vaddr), key b (1 << 24 | proto << 16 | vport for a service; 0 for the VIP
// itself), value (service index, or the VIP's service count), 0 in `used` = empty.
export const SVCMAP_ENTRY_SIZE: u32 = 16;
export const SVCMAP_KEY_A: u32 = 0;
export const SVCMAP_KEY_B: u32 = 4;
export const SVCMAP_VALUE: u32 = 8;
export const SVCMAP_USED: u32 = 12;

// ---- real-server (dest) record (80 bytes) ----------------------------------------------------
//   0       4     6     8       12      16      20    22    24              32 ...        64
//   +-------+-----+-----+-------+-------+-------+-----+-----+---------------+---- u64 ----+
//   | daddr |dport|flags|service|active |inact  |upper|lower| conns (u64)   | inPkts outPkts inBytes outBytes
// upper/lower: connection thresholds (-x/-y, 0 = none). Flags: IN_USE (the record holds a
// server), AVAILABLE (it is a destination of its service; cleared on delete, while its
// connections live on), OVERLOAD (over its upper threshold, as ip_vs_bind_dest sets it).
// At 64: persist, the persistence templates naming it (dest->persistconns): the host reuses a
// deleted dest's record only when no connection and no template refers to it.
export const DEST_SIZE: u32 = 80;
export const DEST_DADDR: u32 = 0;
export const DEST_DPORT: u32 = 4;
export const DEST_FLAGS: u32 = 6;
export const DEST_SERVICE: u32 = 8;
export const DEST_ACTIVE: u32 = 12;
export const DEST_INACTIVE: u32 = 16;
export const DEST_UPPER: u32 = 20;
export const DEST_LOWER: u32 = 22;
export const DEST_CONNS: u32 = 24;
export const DEST_IN_PKTS: u32 = 32;
export const DEST_OUT_PKTS: u32 = 40;
export const DEST_IN_BYTES: u32 = 48;
export const DEST_OUT_BYTES: u32 = 56;
export const DEST_STATS_END: u32 = 64;
export const DEST_PERSIST: u32 = 64;
export const DEST_F_IN_USE: u16 = 1;
export const DEST_F_AVAILABLE: u16 = 2;
export const DEST_F_OVERLOAD: u16 = 4;
export const MAX_DESTS_LIMIT: u32 = 0xffff;

// ---- event record (32 bytes) ---------------------------------------------------------------
//   0    1    2    3    4       8       12      16      20    22    24    26    28      32
//   +----+----+----+----+-------+-------+-------+-------+-----+-----+-----+-----+-------+
//   |type|prot|old |new | conn  | caddr | vaddr | daddr |cport|vport|dport|dest | time  |
//   +----+----+----+----+-------+-------+-------+-------+-----+-----+-----+-----+-------+
// From EVENT_CADDR on, the tuple has the connection record's shape (CONN_CADDR..CONN_DPORT).
export const EVENT_SIZE: u32 = 32;
export const EVENT_TYPE: u32 = 0;
export const EVENT_PROTO: u32 = 1;
export const EVENT_OLD_STATE: u32 = 2;
export const EVENT_NEW_STATE: u32 = 3;
export const EVENT_CONN: u32 = 4;
export const EVENT_CADDR: u32 = 8;
export const EVENT_VADDR: u32 = 12;
export const EVENT_DADDR: u32 = 16;
export const EVENT_CPORT: u32 = 20;
export const EVENT_VPORT: u32 = 22;
export const EVENT_DPORT: u32 = 24;
export const EVENT_DEST: u32 = 26;
export const EVENT_TIME: u32 = 28;
export const EVENT_CONN_NEW: u8 = 1;
export const EVENT_CONN_STATE: u8 = 2;
export const EVENT_CONN_EXPIRED: u8 = 3; // timed out
export const EVENT_CONN_REUSED: u8 = 4; //  replaced by a new SYN on its tuple (TIME_WAIT/CLOSE)
export const EVENT_FTP: u8 = 5; //          the FTP helper met something it did not translate:
//                                          EVENT_NEW_STATE holds the FTP_* counter that counts it

// ---- counters (u64 each) -------------------------------------------------------------------
// (Packets in total are not counted: every packet gets exactly one of forward-in,
// forward-out, pass, drop or local, and the host adds them up.)
export const COUNTER_FORWARD_IN: u32 = 1;
export const COUNTER_FORWARD_OUT: u32 = 2;
export const COUNTER_PASS: u32 = 3;
export const COUNTER_DROP: u32 = 4;
export const COUNTER_CONN_NEW: u32 = 5;
export const COUNTER_CONN_EXPIRED: u32 = 6;
export const COUNTER_CONN_REUSED: u32 = 7;
export const COUNTER_EVENTS_LOST: u32 = 8;
export const COUNTER_LOCAL: u32 = 9;
export const COUNTER_PASS_BASE: u32 = 12; // + pass reason (1..3)
export const COUNTER_DROP_BASE: u32 = 16; // + drop reason (1..DROP_REASON_COUNT - 1)
export const COUNTER_LOCAL_BASE: u32 = 40; // + local reason (1..3)
export const COUNTER_FTP_BASE: u32 = 48; //  + FTP_* below (1..FTP_COUNTER_COUNT - 1)
// What the FTP helper did (ftp.ts), each counted.
export const FTP_PASSIVE: u32 = 1; //        passive data connections created (227, 229)
export const FTP_ACTIVE: u32 = 2; //         active data connections created (PORT, EPRT)
export const FTP_REWRITTEN: u32 = 3; //      227 replies rewritten to the VIP's address
export const FTP_RETRANSMIT: u32 = 4; //     of them, retransmissions rewritten again
export const FTP_SPLIT_COMMAND: u32 = 5; //  a command cut by the segment's end: not acted on
export const FTP_SPLIT_REPLY: u32 = 6; //    a 227/229 reply cut by the segment's end: passed as it is
export const FTP_NO_ROOM: u32 = 7; //        a 227 that could not grow in its slot: passed unmangled
export const FTP_TABLE_FULL: u32 = 8; //     no record for the data connection
export const FTP_CLASH: u32 = 9; //          the data connection's tuple belongs to another connection
export const FTP_BAD_REPLY: u32 = 10; //     an armed 227/229 whose address or port does not parse
export const FTP_SESSIONS_FULL: u32 = 11; // a control connection the helper could not follow (its table full)
export const FTP_COUNTER_COUNT: u32 = 12;
export const COUNTER_SLOTS: u32 = 64;

// ---- timeouts (u32 ms per state) -----------------------------------------------------------
// TCP states 0..10 as ip_vs_proto_tcp.c, then UDP's one state.
export const TIMEOUT_UDP: u32 = 11;
export const TIMEOUT_SLOTS: u32 = 16;

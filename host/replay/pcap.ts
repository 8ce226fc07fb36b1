// libpcap capture files ("pcap", not pcapng): a reader for replaying captures through the
// engine and a writer for recording what it sends.
//
// Layout as pcap-savefile(5) and draft-ietf-opsawg-pcap; every field is in the writer's byte
// order, which the magic number reveals (it reads as 0xa1b2c3d4 only in the right order):
//
//   global header (24 bytes)                record header (16 bytes), then capLen frame bytes
//   +0   magic          u32                 +0   ts_sec    u32
//   +4   version_major  u16  (2)            +4   ts_frac   u32  usec, or nsec for 0xa1b23c4d
//   +6   version_minor  u16  (4)            +8   cap_len   u32  bytes stored in the file
//   +8   thiszone       i32  (0)            +12  orig_len  u32  bytes the frame had on the wire
//   +12  sigfigs        u32  (0)
//   +16  snaplen        u32
//   +20  linktype       u32  (low 26 bits; the top bits say whether frames carry an FCS)
//
// The reader is strict about truncation (a short record means a cut-off or corrupt file, and
// replaying half a frame would only produce a confusing drop later) but lenient about
// cap_len > snaplen, which some capture tools write.
import { WasmvsError } from '../errors.js';

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_IPV4 = 228;

const MAGIC_USEC = 0xa1b2c3d4;
const MAGIC_NSEC = 0xa1b23c4d;
const MAGIC_USEC_SWAPPED = 0xd4c3b2a1;
const MAGIC_NSEC_SWAPPED = 0x4d3cb2a1;
// A pcapng file opens with a Section Header Block, whose type reads the same in both orders.
const PCAPNG_MAGIC = 0x0a0d0d0a;

const GLOBAL_HEADER_LEN = 24;
const GH_MAGIC = 0;
const GH_VERSION_MAJOR = 4;
const GH_VERSION_MINOR = 6;
const GH_THISZONE = 8;
const GH_SIGFIGS = 12;
const GH_SNAPLEN = 16;
const GH_LINKTYPE = 20;
// As libpcap's LT_LINKTYPE(): the bits above hold FCS length information, not the link type.
const LINKTYPE_MASK = 0x03ffffff;

const RECORD_HEADER_LEN = 16;
const REC_TS_SEC = 0;
const REC_TS_FRAC = 4;
const REC_CAP_LEN = 8;
const REC_ORIG_LEN = 12;

const PCAP_VERSION_MAJOR = 2;
const PCAP_VERSION_MINOR = 4;
// libpcap's MAXIMUM_SNAPLEN: it refuses larger records too, so one is a corrupt length field.
const MAX_CAP_LEN = 262144;

const USEC_PER_SEC = 1e6;
const NSEC_PER_SEC = 1e9;
const MAX_U32 = 0xffffffff;

const ETH_TYPE_OFFSET = 12;
const ETHERTYPE_LEN = 2;
const VLAN_TAG_LEN = 4;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100; // 802.1Q
const ETHERTYPE_QINQ = 0x88a8; // 802.1ad outer tag
const IP_VERSION_MASK = 0xf0;
const IP_VERSION_4 = 0x40;

const WRITER_INITIAL_CAPACITY = 64 * 1024;

export interface PcapHeader {
  linkType: number;
  /** True for 0xa1b23c4d files: tsFrac counts nanoseconds instead of microseconds. */
  nanosecond: boolean;
  snapLen: number;
  /** Byte order the file was written in; informational, the reader handles both. */
  bigEndian: boolean;
  versionMajor: number;
  versionMinor: number;
}

export interface PcapRecord {
  tsSec: number;
  /** Microseconds, or nanoseconds when header.nanosecond. */
  tsFrac: number;
  /** Length of the frame on the wire; data.length is less when the capture was truncated. */
  origLen: number;
  /** A view into the input bytes, not a copy. */
  data: Uint8Array;
}

export interface PcapWriterRecord {
  tsSec: number;
  tsFrac: number;
  /** Defaults to data.length. */
  origLen?: number;
  data: Uint8Array;
}

// Names for the link types people most often bring by mistake, for a readable error.
const LINKTYPE_NAMES: Record<number, string> = {
  0: 'NULL (BSD loopback)',
  105: 'IEEE802_11',
  113: 'LINUX_SLL (tcpdump -i any)',
  127: 'IEEE802_11_RADIOTAP',
  229: 'IPV6',
  276: 'LINUX_SLL2 (tcpdump -i any)',
};

function isSupportedLinkType(linkType: number): boolean {
  return linkType === LINKTYPE_ETHERNET || linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4;
}

function linkTypeError(linkType: number): WasmvsError {
  const name = LINKTYPE_NAMES[linkType];
  return new WasmvsError(
    'WASMVS_PCAP_LINKTYPE',
    `link type ${linkType}${name ? ` ${name}` : ''} is not supported; wasmvs reads Ethernet (1), RAW (101) and IPv4 (228)` +
      (linkType === 113 || linkType === 276 ? '; capture on a named interface instead of "any"' : ''),
  );
}

function formatError(message: string): WasmvsError {
  return new WasmvsError('WASMVS_PCAP_FORMAT', message);
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/**
 * Parses the global header now (so a wrong file fails at once) and the records lazily; each
 * records() call starts again from the first record. A truncated record throws when reached.
 */
export function readPcap(bytes: Uint8Array): { header: PcapHeader; records(): Generator<PcapRecord> } {
  const length = bytes.byteLength;
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  if (length < 4) {
    throw formatError(`global header truncated at byte offset 0: the file has ${length} bytes, a pcap header ${GLOBAL_HEADER_LEN}`);
  }
  const magic = view.getUint32(GH_MAGIC, false);
  if (magic === PCAPNG_MAGIC) {
    throw formatError('pcapng is not supported; convert with: editcap -F pcap in.pcapng out.pcap');
  }
  let bigEndian: boolean;
  let nanosecond: boolean;
  switch (magic) {
    case MAGIC_USEC: bigEndian = true; nanosecond = false; break;
    case MAGIC_NSEC: bigEndian = true; nanosecond = true; break;
    case MAGIC_USEC_SWAPPED: bigEndian = false; nanosecond = false; break;
    case MAGIC_NSEC_SWAPPED: bigEndian = false; nanosecond = true; break;
    default:
      throw formatError(
        `not a pcap file: magic ${hex32(magic)} at byte offset 0 (expected ${hex32(MAGIC_USEC)} or ${hex32(MAGIC_NSEC)} in either byte order)`,
      );
  }
  if (length < GLOBAL_HEADER_LEN) {
    throw formatError(`global header truncated at byte offset 0: the file has ${length} bytes, a pcap header ${GLOBAL_HEADER_LEN}`);
  }
  const le = !bigEndian;
  const versionMajor = view.getUint16(GH_VERSION_MAJOR, le);
  const versionMinor = view.getUint16(GH_VERSION_MINOR, le);
  if (versionMajor !== PCAP_VERSION_MAJOR) {
    throw formatError(`pcap version ${versionMajor}.${versionMinor} at byte offset ${GH_VERSION_MAJOR} is not supported (expected 2.x)`);
  }
  const linkType = view.getUint32(GH_LINKTYPE, le) & LINKTYPE_MASK;
  if (!isSupportedLinkType(linkType)) throw linkTypeError(linkType);
  const header: PcapHeader = {
    linkType,
    nanosecond,
    snapLen: view.getUint32(GH_SNAPLEN, le),
    bigEndian,
    versionMajor,
    versionMinor,
  };

  function* records(): Generator<PcapRecord> {
    let offset = GLOBAL_HEADER_LEN;
    // 1-based, as Wireshark numbers frames, so messages match what the user sees there.
    for (let n = 1; offset < length; n++) {
      const where = `record ${n} at byte offset ${offset}`;
      if (length - offset < RECORD_HEADER_LEN) {
        throw formatError(`${where}: record header truncated (${length - offset} of ${RECORD_HEADER_LEN} bytes)`);
      }
      const capLen = view.getUint32(offset + REC_CAP_LEN, le);
      if (capLen > MAX_CAP_LEN) {
        throw formatError(`${where}: capture length ${capLen} exceeds ${MAX_CAP_LEN}; the file is corrupt`);
      }
      const dataStart = offset + RECORD_HEADER_LEN;
      if (capLen > length - dataStart) {
        throw formatError(`${where}: frame truncated (${length - dataStart} of ${capLen} bytes)`);
      }
      yield {
        tsSec: view.getUint32(offset + REC_TS_SEC, le),
        tsFrac: view.getUint32(offset + REC_TS_FRAC, le),
        origLen: view.getUint32(offset + REC_ORIG_LEN, le),
        data: bytes.subarray(dataStart, dataStart + capLen),
      };
      offset = dataStart + capLen;
    }
  }

  return { header, records };
}

/**
 * Builds a pcap file in memory, little-endian (the native order of every machine we run on).
 * Frames longer than snapLen are cut to snapLen with origLen kept, as a capture would store
 * them; readers such as libpcap would cut them anyway.
 */
export class PcapWriter {
  private buf: Uint8Array;
  private view: DataView;
  private length = 0;
  private recordCount = 0;
  private readonly snapLen: number;
  private readonly fracPerSec: number;

  constructor(header: Pick<PcapHeader, 'linkType' | 'nanosecond' | 'snapLen'>) {
    if (!isSupportedLinkType(header.linkType)) throw linkTypeError(header.linkType);
    if (!Number.isInteger(header.snapLen) || header.snapLen < 1 || header.snapLen > MAX_CAP_LEN) {
      throw formatError(`snapLen ${header.snapLen} is not an integer from 1 to ${MAX_CAP_LEN}`);
    }
    this.snapLen = header.snapLen;
    this.fracPerSec = header.nanosecond ? NSEC_PER_SEC : USEC_PER_SEC;
    this.buf = new Uint8Array(WRITER_INITIAL_CAPACITY);
    this.view = new DataView(this.buf.buffer);
    const v = this.view;
    v.setUint32(GH_MAGIC, header.nanosecond ? MAGIC_NSEC : MAGIC_USEC, true);
    v.setUint16(GH_VERSION_MAJOR, PCAP_VERSION_MAJOR, true);
    v.setUint16(GH_VERSION_MINOR, PCAP_VERSION_MINOR, true);
    v.setInt32(GH_THISZONE, 0, true);
    v.setUint32(GH_SIGFIGS, 0, true);
    v.setUint32(GH_SNAPLEN, header.snapLen, true);
    v.setUint32(GH_LINKTYPE, header.linkType, true);
    this.length = GLOBAL_HEADER_LEN;
  }

  add(r: PcapWriterRecord): void {
    const n = this.recordCount + 1;
    const origLen = r.origLen ?? r.data.length;
    // Caught here because a bad value would otherwise wrap silently in setUint32.
    if (!Number.isInteger(r.tsSec) || r.tsSec < 0 || r.tsSec > MAX_U32) {
      throw formatError(`record ${n}: tsSec ${r.tsSec} is not an integer from 0 to ${MAX_U32}`);
    }
    if (!Number.isInteger(r.tsFrac) || r.tsFrac < 0 || r.tsFrac >= this.fracPerSec) {
      throw formatError(`record ${n}: tsFrac ${r.tsFrac} is not an integer from 0 to ${this.fracPerSec - 1}`);
    }
    if (!Number.isInteger(origLen) || origLen < r.data.length || origLen > MAX_U32) {
      throw formatError(`record ${n}: origLen ${origLen} is not an integer from ${r.data.length} (the data length) to ${MAX_U32}`);
    }
    const capLen = Math.min(r.data.length, this.snapLen);
    this.reserve(RECORD_HEADER_LEN + capLen);
    const at = this.length;
    this.view.setUint32(at + REC_TS_SEC, r.tsSec, true);
    this.view.setUint32(at + REC_TS_FRAC, r.tsFrac, true);
    this.view.setUint32(at + REC_CAP_LEN, capLen, true);
    this.view.setUint32(at + REC_ORIG_LEN, origLen, true);
    this.buf.set(r.data.subarray(0, capLen), at + RECORD_HEADER_LEN);
    this.length = at + RECORD_HEADER_LEN + capLen;
    this.recordCount = n;
  }

  /** The file so far, as a view (no copy); later add() calls only append, so it stays valid. */
  toBytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
}

/** The record's timestamp in milliseconds since the epoch; fractional below a millisecond. */
export function recordTimeMs(header: PcapHeader, r: PcapRecord): number {
  return r.tsSec * 1000 + r.tsFrac / (header.nanosecond ? 1e6 : 1e3);
}

/**
 * Where the IPv4 header starts in a frame of this link type, or -1 if the frame carries no
 * IPv4 packet (ARP, IPv6, ...). Ethernet: ethertype 0x0800, skipping any 802.1Q/802.1ad
 * (0x8100/0x88a8) VLAN tags; RAW (101): 0 if the version nibble is 4, else -1; IPV4 (228): 0.
 * The IPv4 header itself may still be short; validating it is the data plane's job.
 */
export function ipv4Offset(linkType: number, frame: Uint8Array): number {
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      let offset = ETH_TYPE_OFFSET;
      while (offset + ETHERTYPE_LEN <= frame.length) {
        const type = (frame[offset] << 8) | frame[offset + 1];
        if (type === ETHERTYPE_IPV4) return offset + ETHERTYPE_LEN;
        if (type !== ETHERTYPE_VLAN && type !== ETHERTYPE_QINQ) return -1;
        // A tag is TPID (where we stand) + TCI; the next ethertype follows it.
        offset += VLAN_TAG_LEN;
      }
      return -1;
    }
    case LINKTYPE_RAW:
      return frame.length > 0 && (frame[0] & IP_VERSION_MASK) === IP_VERSION_4 ? 0 : -1;
    case LINKTYPE_IPV4:
      return 0;
    default:
      throw linkTypeError(linkType);
  }
}

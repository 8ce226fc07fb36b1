// The few DNS messages DNS_CHECK needs (RFC 1035 section 4.1): a query of one question with
// RD set, and the header of a response. Layout of the 12-byte header:
//
//    0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                      ID                       |  0
//   |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |  2
//   |                    QDCOUNT                    |  4
//   |                    ANCOUNT                    |  6
//   |                    NSCOUNT                    |  8
//   |                    ARCOUNT                    | 10
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
// then the question: QNAME as length-prefixed labels ending in a zero byte, QTYPE, QCLASS.
export const HEADER_LEN = 12;
const ID = 0;
const FLAGS = 2;
const QDCOUNT = 4;
const FLAG_QR = 0x8000;
const FLAG_RD = 0x0100;
const RCODE_MASK = 0x000f;
const CLASS_IN = 1;
export const MAX_LABEL = 63;
export const MAX_NAME = 255;

/** A query for `name` (dotted; "" or "." is the root) of type `qtype`, class IN. */
export function writeQuery(id: number, name: string, qtype: number): Buffer {
  const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.');
  const qname: number[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'utf8');
    if (b.length === 0 || b.length > MAX_LABEL) throw new RangeError(`DNS label "${l}" must be 1 to ${MAX_LABEL} bytes`);
    qname.push(b.length, ...b);
  }
  qname.push(0);
  if (qname.length > MAX_NAME) throw new RangeError(`DNS name "${name}" is longer than ${MAX_NAME} bytes`);
  const msg = Buffer.alloc(HEADER_LEN + qname.length + 4);
  msg.writeUInt16BE(id & 0xffff, ID);
  msg.writeUInt16BE(FLAG_RD, FLAGS);
  msg.writeUInt16BE(1, QDCOUNT);
  Buffer.from(qname).copy(msg, HEADER_LEN);
  msg.writeUInt16BE(qtype, HEADER_LEN + qname.length);
  msg.writeUInt16BE(CLASS_IN, HEADER_LEN + qname.length + 2);
  return msg;
}

export interface ResponseHeader { id: number; response: boolean; rcode: number; qdcount: number }

/** The header of a message, or undefined when it is shorter than one. */
export function readHeader(msg: Uint8Array): ResponseHeader | undefined {
  if (msg.length < HEADER_LEN) return undefined;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = v.getUint16(FLAGS);
  return { id: v.getUint16(ID), response: (flags & FLAG_QR) !== 0, rcode: flags & RCODE_MASK, qdcount: v.getUint16(QDCOUNT) };
}

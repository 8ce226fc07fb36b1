// The C library, loaded once through koffi for every module that calls into it (tun.ts,
// uring.ts, the writer thread, the THP benchmark). glibc by its soname; where that fails
// (musl and other C libraries), node itself is linked against one, so its own symbols resolve.
import koffi, { type LibraryHandle } from 'koffi';

let handle: LibraryHandle | undefined;

export function libc(): LibraryHandle {
  if (handle) return handle;
  try {
    handle = koffi.load('libc.so.6');
  } catch {
    handle = koffi.load(null);
  }
  return handle;
}

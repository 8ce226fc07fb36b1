// The WebAssembly JS API types that the public API names (Engine.memory, abi.ts). Node has
// the WebAssembly global at run time, but its types come with the DOM lib, and @types/node
// does not declare them: a shipped .d.ts that said `WebAssembly.Memory` alone would fail to
// compile in a Node project with `lib: ["es2022"]` ("Cannot find namespace 'WebAssembly'";
// test/dts.test.ts builds such a consumer). So the members the API relies on are declared
// here as a global augmentation: without the DOM lib they are the whole of these types, and
// with it they merge into the DOM lib's identical declarations.
declare global {
  namespace WebAssembly {
    interface Memory {
      /** Typed as the DOM lib types it; for the engine's (shared) memory a SharedArrayBuffer. */
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
    /** A compiled module: opaque to the API's users. */
    interface Module {}
  }
}

/** The engine's linear memory: a shared WebAssembly.Memory that never grows or moves. */
export type WasmMemory = WebAssembly.Memory;
/** A compiled data-plane module. */
export type WasmModule = WebAssembly.Module;

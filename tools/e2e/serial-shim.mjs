// A stand-in for `navigator.serial`, installed with playwright's addInitScript before the app
// loads, so the Meter page runs its real Web Serial code path (requestPort with filters,
// open, readable.getReader, read, cancel, close, getPorts) against bytes from a fixture.
//
// installSerialShim(page, bytes, options) serves `bytes` in chunks of 1..chunkMax bytes every
// intervalMs; what the page asked for is recorded in window.__mkSerial (filters, open options).

export async function installSerialShim(page, bytes, { chunkMax = 2048, intervalMs = 10 } = {}) {
  await page.addInitScript(({ base64, chunkMax, intervalMs }) => {
    const data = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const record = { filters: null, opens: [], reads: 0, done: false };
    window.__mkSerial = record;
    // Deterministic chunk sizes (xorshift32), so a failing run can be replayed.
    let seed = 0x1234567;
    const nextSize = () => {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      return 1 + ((seed >>> 0) % chunkMax);
    };
    class FakePort extends EventTarget {
      constructor() { super(); this.readable = null; this.pos = 0; }
      getInfo() { return { usbVendorId: 0x0403, usbProductId: 0x6001 }; }
      async open(options) {
        record.opens.push({ baudRate: options.baudRate, dataBits: options.dataBits, parity: options.parity, stopBits: options.stopBits });
        const port = this;
        let timer = null;
        this.readable = new ReadableStream({
          pull(controller) {
            return new Promise((resolve) => {
              timer = setTimeout(() => {
                if (port.pos >= data.length) { record.done = true; resolve(); return; } // stays open, silent
                const end = Math.min(data.length, port.pos + nextSize());
                controller.enqueue(data.slice(port.pos, end));
                port.pos = end;
                record.reads += 1;
                resolve();
              }, intervalMs);
            });
          },
          cancel() { clearTimeout(timer); },
        });
      }
      async close() { this.readable = null; }
    }
    const port = new FakePort();
    let granted = false;
    const serial = {
      async requestPort(options) { record.filters = options?.filters ?? []; granted = true; return port; },
      async getPorts() { return granted ? [port] : []; },
      addEventListener() {}, removeEventListener() {},
    };
    Object.defineProperty(Navigator.prototype, 'serial', { configurable: true, get: () => serial });
  }, { base64: Buffer.from(bytes).toString('base64'), chunkMax, intervalMs });
}

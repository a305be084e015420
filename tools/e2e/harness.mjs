// Shared helpers for the browser end-to-end tests: start the release gateway on a free loopback
// port (port 0; the gateway prints the address it got) and stop it again.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// As root, without a sandbox; the background-networking flags keep Chromium off the closed network.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function startGateway(extraArgs = []) {
  // MK_GATEWAY_BIN lets a build with its own CARGO_TARGET_DIR point at its binary.
  const bin = process.env.MK_GATEWAY_BIN ?? join(ROOT, 'target', 'release', 'gateway');
  // Each run gets its own throw-away message store, removed again by stop().
  const storeDir = mkdtempSync(join(tmpdir(), 'mk-e2e-store-'));
  const store = join(storeDir, 'node.sqlite');
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--assets', join(ROOT, 'dist'), '--store', store, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in 20 s: ${stderr}`)), 20000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`gateway exited (${code}): ${stderr}`)); });
  });
  return {
    url,
    store,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

// Shared helpers for the browser end-to-end tests: start the release gateway on a free loopback
// port (port 0; the gateway prints the address it got) and stop it again.
import { before, after } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// The workspace's own programs (pi-agent, meterkast-provider): `cargo build --bins` puts them in
// target/debug, which scripts/test.sh runs before these tests; MK_BIN_DIR points at a build with
// its own CARGO_TARGET_DIR.
export const BIN_DIR = process.env.MK_BIN_DIR ?? join(ROOT, 'target', 'debug');

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

/** Debian's Chromium, headless (never a test tool's own browser download). */
export function launchChromium() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/**
 * Registers `before`/`after` hooks that start a gateway and a browser for the calling test file
 * and stop both afterwards. The returned object's `gateway` and `browser` are set once `before`
 * has run, so tests read them as `env.gateway.url`, `env.browser.newContext()`.
 */
export function gatewayAndBrowser(gatewayArgs = []) {
  const env = { gateway: undefined, browser: undefined };
  before(async () => {
    env.gateway = await startGateway(gatewayArgs);
    env.browser = await launchChromium();
  });
  after(async () => {
    await env.browser?.close();
    await env.gateway?.stop();
  });
  return env;
}

/**
 * Records every request a page or browser context sends: its URL and its raw body bytes (binary
 * bodies included), so a test can prove that no secret ever leaves the browser.
 */
export function captureRequests(pageOrContext) {
  const seen = [];
  pageOrContext.on('request', (request) => {
    seen.push({ url: request.url(), body: request.postDataBuffer() ?? Buffer.alloc(0) });
  });
  return seen;
}

/** Whether any captured request carries `needle` (a string, searched as UTF-8, or a Buffer). */
export function anyRequestCarries(seen, needle) {
  const bytes = Buffer.isBuffer(needle) ? needle : Buffer.from(needle, 'utf8');
  return seen.some(({ url, body }) => Buffer.from(url, 'utf8').includes(bytes) || body.includes(bytes));
}

export async function startGateway(extraArgs = []) {
  // MK_GATEWAY_BIN lets a build with its own CARGO_TARGET_DIR point at its binary.
  const bin = process.env.MK_GATEWAY_BIN ?? join(ROOT, 'target', 'release', 'gateway');
  // Each run gets its own throw-away message store, removed again by stop().
  const storeDir = mkdtempSync(join(tmpdir(), 'mk-e2e-store-'));
  const store = join(storeDir, 'node.sqlite');
  // MK_DIST_DIR lets a build with its own `trunk build --dist` point at its bundle.
  const assets = process.env.MK_DIST_DIR ?? join(ROOT, 'dist');
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--assets', assets, '--store', store, ...extraArgs], {
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

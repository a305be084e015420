// Browser end-to-end smoke test: the gateway serves the built app, headless Debian Chromium opens
// it, and the page shows content that only the running wasm can have produced (the node's answer
// to /api/v1/info). Needs `trunk build --release` and `cargo build --release -p gateway` first
// (scripts/test.sh does both). Screenshot: target/e2e/smoke.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayAndBrowser, ROOT } from './harness.mjs';

const env = gatewayAndBrowser();

test('the app renders from wasm and reaches /api/v1/info', async () => {
  const page = await env.browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));

  const infoResponse = page.waitForResponse((r) => r.url().endsWith('/api/v1/info'));
  await page.goto(env.gateway.url);
  const response = await infoResponse;
  assert.equal(response.status(), 200);
  const info = await response.json();
  assert.equal(info.name, 'meterkast-gateway');

  // index.html has no heading and no status: both come from the Leptos app.
  await page.getByRole('heading', { name: 'Meterkast', level: 1 }).waitFor({ timeout: 15000 });
  const status = page.locator('#node-status.status-ok');
  await status.waitFor({ timeout: 15000 });
  assert.equal(await status.textContent(), 'Connected to meterkast-gateway');
  assert.equal(await page.locator('#node-version').textContent(), info.version);

  mkdirSync(join(ROOT, 'target', 'e2e'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'target', 'e2e', 'smoke.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
});

test('a client-side route answers the app, an unknown API path a JSON 404', async () => {
  const page = await env.browser.newPage();
  const deep = await page.goto(`${env.gateway.url}some/client/route`);
  assert.equal(deep.status(), 200);
  await page.getByRole('heading', { name: 'Meterkast', level: 1 }).waitFor({ timeout: 15000 });

  const res = await fetch(`${env.gateway.url}api/v1/no-such-endpoint`);
  assert.equal(res.status, 404);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = await res.json();
  assert.equal(body.error.code, 'not_found');
});

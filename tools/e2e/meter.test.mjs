// The Meter page reading a fixture through a `navigator.serial` shim (serial-shim.mjs): the
// page's real Web Serial code path decodes the 566-telegram Iskra AM550 capture
// (protocol/tests/fixtures/p1/streams/nielsbasjes/, Apache-2.0) and shows it live.
// Screenshot: target/e2e/meter.png (README).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayAndBrowser, ROOT } from './harness.mjs';
import { installSerialShim } from './serial-shim.mjs';

const CAPTURE = readFileSync(join(ROOT, 'protocol/tests/fixtures/p1/streams/nielsbasjes/ttyUSB0-raw.txt'), 'latin1')
  .replace(/\n/g, '\r\n');
const TELEGRAMS = [...CAPTURE.matchAll(/\r\n(\/[^!]*![0-9A-F]{4})/g)].map((m) => m[1]);

const env = gatewayAndBrowser();

test('the Meter page reads the capture over (shimmed) Web Serial and shows it live', async () => {
  assert.equal(TELEGRAMS.length, 566);
  const page = await env.browser.newPage({ viewport: { width: 1100, height: 900 } });
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await installSerialShim(page, Buffer.from(CAPTURE, 'latin1'));
  await page.goto(env.gateway.url);

  const connect = page.getByRole('button', { name: 'Connect to the meter' });
  await connect.click();
  // Every telegram of the capture comes through: none bad, none lost.
  await page.waitForFunction(() => document.querySelector('#count-good')?.textContent === '566', null, { timeout: 60000 });
  assert.equal(await page.locator('#count-bad').textContent(), '0');

  const shim = await page.evaluate(() => window.__mkSerial);
  assert.deepEqual(shim.filters.map((f) => f.usbVendorId).slice(0, 2), [0x0403, 0x1a86], 'FTDI and CH340 first');
  assert.deepEqual(shim.opens[0], { baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1 });

  // The raw panel shows the last telegram exactly, with its CRC verdict.
  const last = TELEGRAMS.at(-1);
  assert.equal((await page.locator('#raw-telegram').textContent()).replace(/\r?\n/g, '\r\n'), last);
  assert.match(await page.locator('#crc-status').textContent(), new RegExp(`CRC ${last.slice(-4)} correct`));
  // The live power is the last telegram's 1-0:1.7.0, digits as the meter sent them.
  const power = last.match(/1-0:1\.7\.0\((\d+\.\d+)\*kW\)/)[1].replace(/^0+(?=\d)/, '');
  assert.equal(await page.locator('#power-import').textContent(), `${power} kW`);
  const status = await page.locator('#meter-status').textContent();
  assert.match(status, /FTDI \(0403:6001\): Reading at 115200 Bd/);
  const points = await page.locator('#power-chart polyline').getAttribute('points');
  assert.ok(points.split(' ').length > 100, 'the chart has the readings');

  mkdirSync(join(ROOT, 'target', 'e2e'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'target', 'e2e', 'meter.png'), fullPage: true });
  console.log(`decode cost on the page: ${await page.locator('#decode-cost').textContent()}`);
  assert.deepEqual(pageErrors, []);
});

test('a remembered port is read again on the next visit without the picker', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await installSerialShim(page, Buffer.from(CAPTURE.slice(0, 20000), 'latin1'));
  await page.goto(env.gateway.url);
  await page.getByRole('button', { name: 'Connect to the meter' }).click();
  await page.waitForFunction(() => Number(document.querySelector('#count-good')?.textContent) > 5, null, { timeout: 30000 });
  // Chromium remembers a granted port across visits; the shim forgets on reload, so the next
  // visit starts with the port already granted (as getPorts() then reports it).
  await page.addInitScript(() => {
    const original = Object.getOwnPropertyDescriptor(Navigator.prototype, 'serial').get;
    const serial = original();
    serial.requestPort({ filters: [] });
  });
  await page.reload();
  await page.waitForFunction(() => Number(document.querySelector('#count-good')?.textContent) > 5, null, { timeout: 30000 });
  const shim = await page.evaluate(() => window.__mkSerial);
  assert.equal(shim.opens.length, 1, 'opened once, without a click');
  await context.close();
});

test('at phone width, by keyboard only: no sideways scrolling, Connect reachable with Tab', async () => {
  const page = await env.browser.newPage({ viewport: { width: 375, height: 740 } });
  await installSerialShim(page, Buffer.from(CAPTURE.slice(0, 40000), 'latin1'));
  await page.goto(env.gateway.url);
  await page.locator('#node-status.status-ok').waitFor({ timeout: 15000 });
  // Tab from the top of the page until the Connect button has focus, then press Enter.
  let focused = '';
  for (let i = 0; i < 12 && focused !== 'connect'; i += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.id ?? '');
  }
  assert.equal(focused, 'connect', 'Connect is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => Number(document.querySelector('#count-good')?.textContent) >= 20, null, { timeout: 30000 });
  // Without mobile emulation the layout viewport stays 375 px, so any overflow shows in scrollWidth.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone screen`);
  await page.screenshot({ path: join(ROOT, 'target', 'e2e', 'meter-phone.png'), fullPage: true });
});

// "Share as a device" end to end, everything real except the meter: a gateway on loopback;
// browser profile A opens the Meter page with the navigator.serial shim feeding the
// 566-telegram Iskra AM550 capture (protocol/tests/fixtures/p1/streams/nielsbasjes/,
// Apache-2.0) at about ten telegrams a second, and shares as a device; browser profile B is
// the household wallet (/home): it pairs with the code the Meter page shows and grants the
// request of a provider tool, the real `meterkast-provider` binary (init, request, follow).
// The provider must receive every telegram shared after the grant — here all 566, since the
// cable is connected once the grant is in force — each reading verified and equal to the
// telegram it came from; then the wallet revokes, the page rotates and the provider is told.
// Screenshot: target/e2e/meter-sharing.png (README).
//
// Binaries: the gateway as every e2e test, meterkast-provider from BIN_DIR (harness.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN_DIR, gatewayAndBrowser, ROOT } from './harness.mjs';
import { installSerialShim } from './serial-shim.mjs';

const CAPTURE = readFileSync(join(ROOT, 'protocol/tests/fixtures/p1/streams/nielsbasjes/ttyUSB0-raw.txt'), 'latin1')
  .replace(/\n/g, '\r\n');
// Each telegram as the meter sent it, `/` … `!`, and its CRC digits.
const TELEGRAMS = [...CAPTURE.matchAll(/\r\n(\/[^!]*!)([0-9A-F]{4})/g)].map((m) => m[1]);
const PROVIDER_BIN = join(BIN_DIR, 'meterkast-provider');
const WALLET_PASSPHRASE = 'a long household passphrase';
const DEVICE_PASSPHRASE = 'the laptop by the meter';
// The shim sends a chunk of 1..chunkMax bytes every 10 ms: ten telegrams a second on average.
const TELEGRAMS_PER_SECOND = 10;
const CHUNK_MAX = Math.round((2 * CAPTURE.length) / TELEGRAMS.length / TELEGRAMS_PER_SECOND);

// The page, the wallet and the provider tool all reach the node from 127.0.0.1, so they would
// share one client's request budget; the rate limit is not what this test is about.
const env = gatewayAndBrowser(['--rate-limit', '100000', '--rate-burst', '100000']);

/** The meter's time of a telegram (`0-0:1.0.0(YYMMDDhhmmssX)`), as UTC seconds. */
function meterTime(telegram) {
  const [, yy, mo, dd, hh, mi, ss, flag] = telegram.match(/0-0:1\.0\.0\((\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)([SW])\)/);
  const offset = flag === 'S' ? 2 : 1;
  return Date.UTC(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh) - offset, Number(mi), Number(ss)) / 1000;
}

/** A register or power from the telegram in Wh or W (three decimals of kWh/kW), as an integer. */
function milli(telegram, obis) {
  const m = telegram.match(new RegExp(`${obis.replace(/[.:]/g, '\\$&')}\\((\\d+)\\.(\\d{3})\\*k`));
  return Number(m[1]) * 1000 + Number(m[2]);
}

function provider(stateDir, node, ...args) {
  return execFileSync(PROVIDER_BIN, ['--state-dir', stateDir, '--node', node, ...args], {
    env: { ...process.env, MK_PROVIDER_LOG: 'warn' },
    encoding: 'utf8',
  });
}

function records(path) {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

async function until(what, limitMs, check) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a wallet pairs with the Meter page and grants a provider, which receives every telegram exactly; revoking rotates and notifies', async () => {
  assert.equal(TELEGRAMS.length, 566);
  const node = env.gateway.url.replace(/\/$/, '');
  const work = mkdtempSync(join(tmpdir(), 'mk-share-device-'));
  const providerDir = join(work, 'provider');
  const out = join(work, 'readings.jsonl');
  let follow;
  try {
    // The provider: identity and card, a request for the 1 s tier, following its grants.
    provider(providerDir, node, 'init', '--name', 'Alpha Energy', '--url', 'https://alpha.example/', '--contact', 'privacy@alpha.example');
    const link = provider(providerDir, node, 'request', '--purpose', 'Show your usage second by second', '--tier', 'second', '--days', '1')
      .split('\n')[0].trim();
    assert.match(link, /^meterkast:/);
    follow = spawn(PROVIDER_BIN, ['--state-dir', providerDir, '--node', node, 'follow', '--format', 'json', '--provisional', '--poll-ms', '200', '--out', out], {
      env: { ...process.env, MK_PROVIDER_LOG: 'warn' },
      stdio: 'ignore',
    });

    // Profile A: the Meter page becomes a device (the cable is connected later).
    const meterContext = await env.browser.newContext({ viewport: { width: 1100, height: 900 } });
    const meter = await meterContext.newPage();
    const pageErrors = [];
    meter.on('pageerror', (err) => pageErrors.push(err.message));
    await installSerialShim(meter, Buffer.from(CAPTURE, 'latin1'), { chunkMax: CHUNK_MAX, intervalMs: 10 });
    await meter.goto(env.gateway.url);
    assert.match(await meter.locator('#share-notice').textContent(), /stops when you close or reload the tab/);
    await meter.locator('#device-passphrase').fill(DEVICE_PASSPHRASE);
    await meter.locator('#share-start').click();
    const code = (await meter.locator('#device-pairing-code').textContent({ timeout: 60000 })).trim();
    const pairingLink = (await meter.locator('#device-pairing-link').textContent()).trim();
    assert.match(pairingLink, /^meterkast:/);
    assert.ok(code.length > 10, code);
    // The link is also offered as a QR code for a wallet on a phone.
    assert.equal(await meter.locator('svg#device-pairing-qr').getAttribute('aria-label'), 'QR code of the pairing link');

    // Profile B: the household wallet pairs with the code and grants the provider's request.
    const walletContext = await env.browser.newContext();
    const wallet = await walletContext.newPage();
    wallet.on('pageerror', (err) => pageErrors.push(err.message));
    await wallet.goto(`${env.gateway.url}home`);
    await wallet.getByRole('button', { name: 'Create a new wallet' }).click();
    const words = await wallet.locator('#recovery-phrase li').allTextContents();
    await wallet.getByRole('button', { name: 'I have written them down' }).click();
    for (let slot = 0; slot < 3; slot += 1) {
      const label = await wallet.locator(`label[for="check-${slot}"]`).textContent();
      await wallet.locator(`#check-${slot}`).fill(words[Number(label.replace('Word ', '')) - 1]);
    }
    await wallet.getByRole('button', { name: 'Confirm' }).click();
    await wallet.getByLabel('Passphrase', { exact: true }).fill(WALLET_PASSPHRASE);
    await wallet.getByLabel('Passphrase again').fill(WALLET_PASSPHRASE);
    await wallet.getByRole('button', { name: 'Lock and store' }).click();
    await wallet.locator('#identity-unlocked').waitFor({ timeout: 60000 });
    await wallet.locator('#pair-code').fill(code);
    await wallet.locator('#pair-submit').click();
    await wallet.locator('#devices li.device').waitFor({ timeout: 60000 });
    await meter.locator('#share-status', { hasText: 'Paired' }).waitFor({ timeout: 30000 });

    await wallet.locator('#request-link').fill(link);
    await wallet.locator('#request-open').click();
    await wallet.locator('#request-verdict.verified').waitFor({ timeout: 60000 });
    await wallet.locator('#grant').click();
    await meter.locator('#share-status', { hasText: 'Sharing with 1 provider' }).waitFor({ timeout: 30000 });

    // Now the cable: every telegram is shared while the grant is in force.
    await meter.getByRole('button', { name: 'Connect to the meter' }).click();
    await meter.waitForFunction(() => Number(document.querySelector('#share-readings')?.dataset.count) >= 100, null, { timeout: 60000 });
    mkdirSync(join(ROOT, 'target', 'e2e'), { recursive: true });
    await meter.screenshot({ path: join(ROOT, 'target', 'e2e', 'meter-sharing.png'), fullPage: true });
    await meter.waitForFunction(() => document.querySelector('#count-good')?.textContent === '566', null, { timeout: 120000 });
    await meter.waitForFunction(() => document.querySelector('#share-readings')?.dataset.count === '566', null, { timeout: 10000 });
    await meter.waitForFunction(() => document.querySelector('#share-queue')?.dataset.count === '0', null, { timeout: 120000 });

    // The device signs a checkpoint within a minute of a reading: everything becomes verified.
    const expected = new Map(TELEGRAMS.map((t) => [meterTime(t), t]));
    const verified = await until('every shared telegram verified at the provider', 150000, () => {
      const got = records(out).filter((r) => r.type === 'reading' && r.tier === 'Second' && r.status === 'verified');
      return new Set(got.map((r) => r.timestamp)).size >= expected.size ? got : null;
    });

    // The wallet revokes: the device rotates the stream, tells the provider with a signed
    // notice, and its final delivery receipt lets the wallet confirm the rotation.
    await wallet.locator('#access li.grant button.revoke').click();
    await meter.locator('#share-status', { hasText: 'No provider has access yet' }).waitFor({ timeout: 30000 });
    await until("the provider's revocation notice", 60000, () =>
      records(out).some((r) => r.type === 'notice' && r.notice === 'revoked'));
    await wallet.locator('#access li.grant[data-state="revoked"][data-rotation="confirmed"]').waitFor({ timeout: 60000 });
    await meter.locator('#share-stop').click();
    const seen = new Set();
    for (const reading of verified) {
      const telegram = expected.get(reading.timestamp);
      assert.ok(telegram, `a reading at ${reading.timestamp} that the capture does not hold`);
      assert.equal(reading.raw_telegram, telegram, 'the reading carries its telegram verbatim');
      assert.deepEqual(reading.energy_import_wh, [milli(telegram, '1-0:1.8.1'), milli(telegram, '1-0:1.8.2')]);
      assert.deepEqual(reading.energy_export_wh, [milli(telegram, '1-0:2.8.1'), milli(telegram, '1-0:2.8.2')]);
      assert.equal(reading.power_import_w, milli(telegram, '1-0:1.7.0'));
      assert.equal(reading.power_export_w, milli(telegram, '1-0:2.7.0'));
      seen.add(reading.timestamp);
    }
    assert.equal(seen.size, 566, 'every telegram shared after the grant arrived');
    assert.deepEqual(pageErrors, []);
    await walletContext.close();
    await meterContext.close();
  } finally {
    if (follow && follow.exitCode === null) {
      const exited = new Promise((resolve) => follow.once('exit', resolve));
      follow.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
  }
});

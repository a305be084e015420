// The household wallet with a real meter reader: a gateway, a `pi-agent run --simulate` and a
// `meterkast-provider` on loopback. The browser wallet pairs with the agent by its pairing link
// (the device appears in #devices, and again after a reload and unlock), opens the provider's
// request link, grants, revokes and sees the device confirm the key rotation, shows the history
// with the device's delivery receipt, exports the consent records, and shows a tampered link as
// invalid. No request the page sends carries the recovery phrase or the passphrase.
// Screenshots: target/e2e/wallet-paired.png, wallet-request.png, wallet-revoked.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, launchChromium, captureRequests, anyRequestCarries, ROOT, BIN_DIR } from './harness.mjs';

const PASSPHRASE = 'our household passphrase';
const SHOTS = join(ROOT, 'target', 'e2e');

let gateway;
let browser;
let agent;
let work;
let agentLog = '';

/** Waits until `check()` returns a truthy value (polling), or fails after `ms`. */
async function waitFor(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nagent log:\n${agentLog.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** RFC 4648 base32 (no padding) to bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function provider(...args) {
  return execFileSync(join(BIN_DIR, 'meterkast-provider'), ['--state-dir', join(work, 'provider'), '--node', gateway.url, ...args], {
    env: { ...process.env, MK_PROVIDER_LOG: 'warn' },
    encoding: 'utf8',
  });
}

before(async () => {
  for (const bin of ['pi-agent', 'meterkast-provider']) {
    assert.ok(existsSync(join(BIN_DIR, bin)), `${bin} is missing in ${BIN_DIR}: cargo build --bins`);
  }
  work = mkdtempSync(join(tmpdir(), 'mk-e2e-wallet-'));
  mkdirSync(SHOTS, { recursive: true });
  gateway = await startGateway();
  agent = spawn(join(BIN_DIR, 'pi-agent'), [
    'run', '--simulate', '7', '--node', gateway.url, '--state-dir', join(work, 'agent'),
    '--tiers', 'second', '--checkpoint-secs', '2', '--consent-poll-ms', '200',
  ], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MK_AGENT_LOG: 'info' } });
  agent.stderr.on('data', (d) => { agentLog += d; });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (agent && agent.exitCode === null) {
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
  }
  await gateway?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function createWallet(page) {
  await page.getByRole('button', { name: 'Create a new wallet' }).click();
  const words = await page.locator('#recovery-phrase li').allTextContents();
  await page.getByRole('button', { name: 'I have written them down' }).click();
  for (let slot = 0; slot < 3; slot += 1) {
    const label = await page.locator(`label[for="check-${slot}"]`).textContent();
    await page.locator(`#check-${slot}`).fill(words[Number(label.replace('Word ', '')) - 1]);
  }
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByLabel('Passphrase', { exact: true }).fill(PASSPHRASE);
  await page.getByLabel('Passphrase again').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Lock and store' }).click();
  await page.locator('#identity-unlocked').waitFor({ timeout: 60000 });
  return words;
}

async function unlock(page) {
  await page.getByLabel('Passphrase', { exact: true }).fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await page.locator('#identity-unlocked').waitFor({ timeout: 60000 });
}

const state = {};

test('the browser wallet pairs with a running pi-agent by its pairing link', async () => {
  const code = await waitFor('the agent\'s pairing code', 60000, () => {
    const file = join(work, 'agent', 'pairing-code');
    return existsSync(file) && readFileSync(file, 'utf8').trim();
  });
  // The code carries the device's identity: its first 32 bytes.
  const deviceId = base32(code.replace(/-/g, '')).subarray(0, 32).toString('hex');
  const pairingLink = `meterkast:pair/${code.replace(/-/g, '').toLowerCase()}`;

  state.context = await browser.newContext({ viewport: { width: 375, height: 800 }, acceptDownloads: true });
  const page = await state.context.newPage();
  state.page = page;
  state.requests = captureRequests(state.context);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${gateway.url}home`);
  state.words = await createWallet(page);

  await page.locator('#devices-empty').waitFor();
  await page.getByLabel('Pairing code or link').fill(pairingLink);
  await page.locator('#pair-submit').click();
  const device = page.locator(`#devices li.device[data-device-id="${deviceId}"]`);
  await device.waitFor({ timeout: 120000 });
  assert.match(await page.locator('#pair-status').textContent(), /Paired with device/);
  assert.equal(await device.getAttribute('data-state'), 'paired');
  assert.match(await device.textContent(), /Last readings/);
  await page.locator('#history li.event', { hasText: 'Paired with this wallet' }).waitFor();
  await page.screenshot({ path: join(SHOTS, 'wallet-paired.png'), fullPage: true });

  // The device survives a reload: the book is in the browser, the log is read back from the node.
  await page.reload();
  await unlock(page);
  await device.waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#devices li.device').count(), 1);
  const stored = await page.evaluate(() => Object.entries(localStorage).filter(([k]) => k.startsWith('meterkast.wallet.')));
  assert.equal(stored.length, 1, 'one device book');
  assert.ok(stored[0][1].includes(deviceId), 'the book names the device');
  assert.deepEqual(errors, []);
  state.deviceId = deviceId;
});

test('grant a provider\'s request, revoke it, see the rotation confirmed, the history and the export', async () => {
  const { page } = state;
  assert.ok(page, 'paired in the previous test');
  provider('init', '--name', 'Wattt', '--url', 'https://wattt.example/', '--contact', 'privacy@wattt.example');
  const link = provider('request', '--purpose', 'Advice on your heat pump', '--tier', 'second', '--days', '1')
    .split('\n')[0].trim();
  assert.match(link, /^meterkast:request\//);

  // A tampered link (one character of the digest changed) is never shown as valid.
  const last = link.at(-1) === 'a' ? 'b' : 'a';
  await page.getByLabel('A provider\'s request link').fill(link.slice(0, -1) + last);
  await page.locator('#request-open').click();
  await page.locator('#request-verdict.invalid').waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#grant').count(), 0);

  // Opened as the provider's link to this page: locked after navigation, so unlock first.
  await page.goto(`${gateway.url}home/request?link=${encodeURIComponent(link)}`);
  await page.locator('#request-waiting').waitFor();
  await unlock(page);
  await page.locator('#request-verdict.verified').waitFor({ timeout: 30000 });
  assert.match(await page.locator('#request-provider').textContent(), /Wattt/);
  assert.match(await page.locator('#request-purpose').textContent(), /heat pump/);
  assert.match(await page.locator('#request-resolution').textContent(), /every second/);
  const [grantBox, denyBox] = [await page.locator('#grant').boundingBox(), await page.locator('#deny').boundingBox()];
  assert.equal(await page.locator('#grant').getAttribute('class'), await page.locator('#deny').getAttribute('class'));
  assert.equal(Math.round(grantBox.height), Math.round(denyBox.height), 'grant and deny of equal weight');
  await page.screenshot({ path: join(SHOTS, 'wallet-request.png'), fullPage: true });
  await page.locator('#grant').click();

  const grant = page.locator('#access li.grant[data-state="active"]');
  await grant.waitFor({ timeout: 60000 });
  assert.match(await grant.textContent(), /Wattt/);
  // Let readings flow under the grant, so the device's final receipt has something to account
  // for (the agent's log says when it started the grant; its wording is not part of any contract,
  // so a missing line only means waiting the full time).
  const started = Date.now();
  while (Date.now() - started < 15000 && !/GrantStarted|grant started/i.test(agentLog)) {
    await page.waitForTimeout(200);
  }
  await page.waitForTimeout(4000);

  await grant.locator('button.revoke').click();
  const revoked = page.locator('#access li.grant[data-state="revoked"]');
  await revoked.waitFor({ timeout: 60000 });
  await page.locator('#access li.grant[data-rotation="confirmed"]').waitFor({ timeout: 60000 });
  await page.locator('#history li.event[data-kind="delivery"]', { hasText: /Wattt received [\d,]+ readings at 1 s/ }).waitFor({ timeout: 30000 });
  for (const words of ['Paired with this wallet', 'Granted Wattt access', 'Revoked Wattt']) {
    await page.locator('#history li.event', { hasText: words }).waitFor();
  }
  await page.screenshot({ path: join(SHOTS, 'wallet-revoked.png'), fullPage: true });

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-consent').click()]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(exported.format, 'meterkast-consent-export/1');
  assert.equal(exported.device_id, state.deviceId);
  assert.equal(exported.log.length, 3, 'paired, granted, revoked');
  assert.equal(exported.consent_records[0].state, 'revoked');

  // Nothing secret left the browser.
  assert.ok(state.requests.length > 0);
  assert.ok(!anyRequestCarries(state.requests, PASSPHRASE));
  assert.ok(!anyRequestCarries(state.requests, state.words.slice(0, 3).join(' ')));
  await state.context.close();
});

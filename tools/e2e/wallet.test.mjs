// The household wallet's storage in the browser: create (recovery phrase shown and checked),
// lock with a passphrase, lock/unlock, a wrong passphrase refused, restore from the phrase in a
// fresh profile, forget. Every request the page sends is captured: none carries the phrase,
// the passphrase or the secret. Screenshots: target/e2e/wallet-*.png.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { anyRequestCarries, captureRequests, gatewayAndBrowser, ROOT } from './harness.mjs';

const PASSPHRASE = 'a long household passphrase';
const SHOTS = join(ROOT, 'target', 'e2e');

const env = gatewayAndBrowser();

before(() => {
  mkdirSync(SHOTS, { recursive: true });
});

async function choosePassphrase(page) {
  await page.getByLabel('Passphrase', { exact: true }).fill(PASSPHRASE);
  await page.getByLabel('Passphrase again').fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Lock and store' }).click();
  await page.locator('#identity-unlocked').waitFor({ timeout: 60000 });
}

test('create, lock, unlock, refuse a wrong passphrase, restore elsewhere, forget', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const requests = captureRequests(page);
  await page.goto(`${env.gateway.url}home`);

  await page.getByRole('button', { name: 'Create a new wallet' }).click();
  const words = await page.locator('#recovery-phrase li').allTextContents();
  assert.equal(words.length, 24);
  await page.screenshot({ path: join(SHOTS, 'wallet-phrase.png'), fullPage: true });
  await page.getByRole('button', { name: 'I have written them down' }).click();
  for (let slot = 0; slot < 3; slot += 1) {
    const label = await page.locator(`label[for="check-${slot}"]`).textContent();
    const position = Number(label.replace('Word ', '')) - 1;
    await page.locator(`#check-${slot}`).fill(words[position]);
  }
  await page.getByRole('button', { name: 'Confirm' }).click();
  await choosePassphrase(page);
  const id = await page.locator('#identity-id').textContent();

  // What localStorage holds is the sealed blob only.
  const stored = await page.evaluate(() => localStorage.getItem('meterkast.vault.wallet'));
  const blob = JSON.parse(stored);
  assert.equal(blob.kdf.algorithm, 'argon2id');
  assert.deepEqual([blob.kdf.m_kib, blob.kdf.t, blob.kdf.p], [65536, 3, 1]);
  assert.ok(!stored.includes(words.slice(0, 3).join(' ')));

  await page.getByRole('button', { name: 'Lock' }).click();
  await page.getByLabel('Passphrase', { exact: true }).fill('not the passphrase');
  await page.getByRole('button', { name: 'Unlock' }).click();
  await page.locator('#identity-error', { hasText: 'wrong passphrase' }).waitFor({ timeout: 60000 });
  await page.screenshot({ path: join(SHOTS, 'wallet-wrong-passphrase.png'), fullPage: true });
  await page.getByLabel('Passphrase', { exact: true }).fill(PASSPHRASE);
  await page.getByRole('button', { name: 'Unlock' }).click();
  await page.locator('#identity-unlocked').waitFor({ timeout: 60000 });
  assert.equal(await page.locator('#identity-id').textContent(), id);

  // Another browser profile restores the same wallet from the phrase.
  const other = await env.browser.newContext();
  const second = await other.newPage();
  const secondRequests = captureRequests(second);
  await second.goto(`${env.gateway.url}home`);
  await second.getByRole('button', { name: 'Restore from a recovery phrase' }).click();
  await second.getByLabel(/Recovery phrase/).fill(words.join(' '));
  await second.getByRole('button', { name: 'Restore' }).click();
  await choosePassphrase(second);
  assert.equal(await second.locator('#identity-id').textContent(), id, 'same wallet id from the phrase');

  await second.getByRole('button', { name: /Forget this wallet/ }).click();
  await second.getByRole('button', { name: 'Forget it' }).click();
  await second.getByRole('button', { name: 'Create a new wallet' }).waitFor();
  assert.equal(await second.evaluate(() => localStorage.getItem('meterkast.vault.wallet')), null);

  // No request carried the phrase, the passphrase or any part of the stored secret.
  const sent = [...requests, ...secondRequests];
  for (const needle of [
    words.slice(0, 2).join(' '),
    words.slice(0, 2).join('%20'),
    PASSPHRASE,
    encodeURIComponent(PASSPHRASE),
    blob.sealed,
  ]) {
    assert.ok(!anyRequestCarries(sent, needle), `a request carried ${needle}`);
  }
  assert.ok(requests.length > 0, 'the page did talk to the node');
  await other.close();
  await context.close();
});

// The collectivité autocomplete, used with the keyboard only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useGuichet } from './harness.mjs';

const env = useGuichet();

test('au clavier seul, « cergy » propose Cergy en premier et ouvre sa fiche', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.base}/collectivites`);
  // Reach the field with Tab, as a keyboard user would.
  let focused = '';
  for (let i = 0; i < 40 && focused !== 'recherche-collectivite'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.id ?? '');
  }
  assert.equal(focused, 'recherche-collectivite', 'le champ est atteignable à la tabulation');
  const input = page.locator('#recherche-collectivite');
  assert.equal(await input.getAttribute('role'), 'combobox');
  await page.keyboard.type('cergy', { delay: 30 });
  const options = page.getByRole('option');
  await options.first().waitFor();
  assert.equal(await input.getAttribute('aria-expanded'), 'true');
  assert.match(await options.first().textContent(), /^Cergy/);
  assert.match(await options.first().textContent(), /65\s911/);
  assert.match(await page.locator('#recherche-collectivite-statut').textContent(), /suggestion/);
  await page.keyboard.press('ArrowDown');
  const active = await input.getAttribute('aria-activedescendant');
  assert.equal(await page.locator(`#${active}`).getAttribute('aria-selected'), 'true');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowUp');
  assert.equal(await input.getAttribute('aria-activedescendant'), active);
  await page.keyboard.press('Escape');
  assert.equal(await input.getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/collectivites\/commune\/95127/);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Cergy');
  await page.close();
});

test('sans sélection, Entrée envoie le formulaire de recherche', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.base}/collectivites`);
  await page.locator('#recherche-collectivite').focus();
  await page.keyboard.type('95000');
  await page.keyboard.press('Enter');
  await page.waitForURL(/q=95000/);
  assert.match(await page.locator('main').textContent(), /Cergy/);
  await page.close();
});

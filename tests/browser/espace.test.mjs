// Every demo role logs in through the form and reaches "Mon espace".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGuichet, launchBrowser, login, ACCOUNTS } from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startGuichet();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

for (const account of ACCOUNTS) {
  test(`${account.email} se connecte et arrive sur Mon espace`, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await login(page, server.base, account.email);
    await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Mon espace' }).waitFor());
    assert.ok((await page.textContent('main')).includes(account.role), `rôle ${account.role} affiché`);
    await page.getByRole('button', { name: 'Se déconnecter' }).first().click();
    await page.waitForURL(/\/connexion\?statut=deconnecte$/);
    assert.deepEqual(errors, [], 'aucune erreur JavaScript');
    await context.close();
  });
}

test('un mauvais mot de passe est refusé avec un message en français', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.base}/connexion`);
  await page.getByLabel('Adresse électronique').fill(ACCOUNTS[0].email);
  await page.locator('#mot-de-passe-saisie').fill('ce n’est pas le bon');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /Adresse électronique ou mot de passe incorrect/);
  await page.close();
});

// Every demo role logs in through the form and reaches "Mon espace".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useGuichet, login, ACCOUNTS } from './harness.mjs';

const env = useGuichet();

for (const account of ACCOUNTS) {
  test(`${account.email} se connecte et arrive sur Mon espace`, async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await login(page, env.server.base, account.email);
    await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Mon espace' }).waitFor());
    assert.ok((await page.textContent('main')).includes(account.role), `rôle ${account.role} affiché`);
    await page.getByRole('button', { name: 'Se déconnecter' }).first().click();
    await page.waitForURL(/\/connexion\?statut=deconnecte$/);
    assert.deepEqual(errors, [], 'aucune erreur JavaScript');
    await context.close();
  });
}

test('un mauvais mot de passe est refusé avec un message en français', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.base}/connexion`);
  await page.getByLabel('Adresse électronique').fill(ACCOUNTS[0].email);
  await page.locator('#mot-de-passe-saisie').fill('ce n’est pas le bon');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /Adresse électronique ou mot de passe incorrect/);
  await page.close();
});

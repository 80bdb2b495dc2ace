// The simulator, used with the keyboard only, and audited with axe-core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useGuichet, axeSource } from './harness.mjs';

const axe = readFileSync(axeSource, 'utf8');
const env = useGuichet();

async function tabTo(page, id) {
  let focused = '';
  for (let i = 0; i < 60 && focused !== id; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.id ?? '');
  }
  assert.equal(focused, id, `#${id} est atteignable à la tabulation`);
}

test('au clavier seul, on choisit Cergy dans les suggestions, on saisit un coût et on obtient des montants', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.base}/simulateur`);
  await tabTo(page, 'collectivite');
  const input = page.locator('#collectivite');
  assert.equal(await input.getAttribute('role'), 'combobox');
  // The hint stays announced once the combobox adds its live status.
  assert.match(await input.getAttribute('aria-describedby'), /collectivite-aide/);
  await page.keyboard.type('cergy', { delay: 30 });
  const options = page.getByRole('option');
  await options.first().waitFor();
  assert.match(await options.first().textContent(), /^Cergy/);
  assert.match(await page.locator('#collectivite-statut').textContent(), /Entrée pour choisir/);
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  // Choosing fills the field and the reference, and does not send the form.
  assert.equal(await input.inputValue(), 'Cergy');
  assert.equal(await page.locator('#demandeur').inputValue(), 'commune:95127');
  assert.equal(await input.getAttribute('aria-expanded'), 'false');
  assert.match(page.url(), /\/simulateur$/);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'cout');
  await page.keyboard.type('100000');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/simulateur\?.*collectivite=Cergy.*#resultats$/);
  await page.getByRole('heading', { level: 2, name: 'Résultats pour Cergy' }).waitFor();
  const eligible = page.locator('#mesure-axe4-parcours');
  assert.match(await eligible.locator('.fr-badge').textContent(), /Éligible/);
  assert.match(await eligible.locator('.guichet-montant').textContent(), /100\s000\s€/);
  // The explanation opens from the keyboard.
  const button = eligible.getByRole('button', { name: 'Comprendre le résultat' });
  // DSFR's script marks the button once it has taken charge of it: a key pressed before that
  // would be lost (seen once in CI), so wait for it, then for DSFR to open the panel.
  await eligible.locator('button[data-fr-js-collapse-button="true"]', { hasText: 'Comprendre le résultat' }).waitFor();
  await button.focus();
  await page.keyboard.press('Enter');
  await eligible.locator('button[aria-expanded="true"]', { hasText: 'Comprendre le résultat' }).waitFor();
  assert.equal(await button.getAttribute('aria-expanded'), 'true');
  await eligible.getByText(/Montant proposé : 100\s000\s€/).waitFor({ state: 'visible' });
  // Editing the name forgets the reference chosen for the previous one.
  await input.fill('Versailles');
  assert.equal(await page.locator('#demandeur').inputValue(), '');
  await page.close();
});

async function audit(page) {
  // axe is injected as an inline script, which the site's CSP rightly forbids: the audit
  // context bypasses CSP for axe only.
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}) : ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const states = {
  'formulaire vide': '/simulateur',
  résultats: '/simulateur?collectivite=Cergy&cout=100000&date_fin=2022-06-30&depense_prestation=&fait_labo=oui',
  'erreurs de saisie': '/simulateur?collectivite=Cergy&cout=abc&fait_communes_rattachees=-3',
  'liste de choix': '/simulateur?collectivite=jouy&cout=5000',
};

for (const [name, path] of Object.entries(states)) {
  test(`axe : simulateur, ${name}`, async () => {
    const context = await env.browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${env.server.base}${path}`);
    assert.deepEqual(await audit(page), []);
    if (name === 'résultats') {
      // With explanations and expense tables open too.
      for (const b of await page.locator('#mesure-axe3-v1-relation-usager .fr-accordion__btn').all()) {
        await b.click();
      }
      assert.deepEqual(await audit(page), []);
    }
    if (name === 'erreurs de saisie') {
      assert.match(await page.title(), /^Erreur/);
      assert.equal(await page.locator('#cout').inputValue(), 'abc');
      assert.equal(await page.locator('#cout').getAttribute('aria-invalid'), 'true');
    }
    await context.close();
  });
}

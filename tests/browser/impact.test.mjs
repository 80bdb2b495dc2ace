// The impact page, as the Île-de-France coordinator uses it: a draft that raises the full-rate
// threshold from 15,000 to 20,000 inhabitants, compared with the programme in force; axe-core
// finds no serious or critical violation on the form or on the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useGuichet, login, axeSource } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const drafts = mkdtempSync(join(tmpdir(), 'guichet-brouillons-'));
const draft = join(drafts, 'seuil-20000');
mkdirSync(draft);
for (const f of ['programme.yaml', 'parametres.yaml', 'regles.yaml', 'variantes.yaml', 'criteres.yaml']) {
  copyFileSync(join(root, 'programmes/itn7', f), join(draft, f));
}
const params = readFileSync(join(draft, 'parametres.yaml'), 'utf8');
assert.equal(params.split('          valeur: 15000\n').length, 2);
writeFileSync(join(draft, 'parametres.yaml'), params.replace('          valeur: 15000\n', '          valeur: 20000\n'));
// The server started by the harness inherits the environment.
process.env.GUICHET_BROUILLONS_DIR = drafts;

const axe = readFileSync(axeSource, 'utf8');
const env = useGuichet();

async function audit(page) {
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}) : ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

test('la coordination régionale voit l’impact du brouillon sur ses communes', async () => {
  const context = await env.browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await login(page, env.server.base, 'coordination.idf@demo.guichet.test');
  await page.getByRole('link', { name: 'Impact', exact: true }).first().click();
  await page.getByRole('heading', { level: 1, name: 'Impact d’une modification du programme' }).waitFor();
  assert.deepEqual(await audit(page), [], 'formulaire');
  await page.getByLabel('Brouillon (obligatoire)').selectOption('seuil-20000');
  await page.getByLabel('Mesure', { exact: true }).selectOption('axe3.v1.formation');
  await page.getByLabel(/^Coût du projet/).fill('100 000');
  await page.getByLabel(/^Date de dépôt/).fill('2021-06-01');
  await page.getByRole('button', { name: 'Comparer au programme en vigueur' }).click();
  await page.getByRole('heading', { level: 2, name: 'Impact du brouillon « seuil-20000 »' }).waitFor({ timeout: 60_000 });
  const main = await page.textContent('main');
  assert.match(main, /Périmètre : Île-de-France/);
  // Osny (17,446 inhabitants) gains; Cergy (65,911) does not change.
  const osny = page.getByRole('row', { name: /Osny/ });
  assert.match(await osny.first().textContent(), /\+50\u202f000,00\u00a0€/);
  assert.equal(await page.getByRole('row', { name: /commune:95127/ }).count(), 0);
  assert.deepEqual(await audit(page), [], 'rapport');
  await context.close();
});

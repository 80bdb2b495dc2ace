// The scenario in a real browser: Cergy's agent (Val-d'Oise) files a relation-usager
// dossier from the measure page, step by step, with its quote attached; the draft saves as she
// types; she submits and gets her receipt. The instructor downloads the quote. The Val-d'Oise instructor takes it, asks for a correction; the agent
// corrects and files again; the instructor proposes the exceptional rate (refused without a
// justification, then justified) and accepts. The Yvelines instructor never sees it.
// axe-core finds no serious or critical violation on the pages on the way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useGuichet, login, axeSource } from './harness.mjs';

const axe = readFileSync(axeSource, 'utf8');
const env = useGuichet();

async function audit(page, what) {
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}) : ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(serious, [], what);
}

async function next(page) {
  await page.getByRole('button', { name: 'Enregistrer et continuer' }).click();
  await page.waitForURL(/enregistre=1/);
}

test('une commune dépose un dossier, le corrige, et la préfecture décide', async () => {
  const context = await env.browser.newContext({ bypassCSP: true });
  const agent = await context.newPage();
  const base = env.server.base;
  await login(agent, base, 'mairie.cergy@demo.guichet.test');

  // From the measure page to a new draft, the measure chosen.
  await agent.goto(`${base}/mesures/axe3.v1.relation-usager`);
  await agent.getByRole('link', { name: 'Déposer un dossier' }).click();
  await agent.waitForURL(/\/espace\/dossiers\/nouveau\?mesure=axe3\.v1\.relation-usager/);
  assert.equal(await agent.locator('#mesure').inputValue(), 'axe3.v1.relation-usager');
  await audit(agent, 'nouveau dossier');
  // The demo agent acts for the commune and its agglomeration: she says which files.
  await agent.locator('#collectivite').selectOption({ label: 'Cergy' });
  await agent.getByLabel('Titre du projet').fill('Prise de rendez-vous en ligne');
  await agent.getByRole('button', { name: 'Créer le brouillon' }).click();
  await agent.waitForURL(/\/espace\/dossiers\/\d+$/);
  const path = new URL(agent.url()).pathname;
  await agent.getByText('Étape 1 sur 10').waitFor();
  await audit(agent, 'première étape');

  // The project; the draft saves as she types (the panel follows), and a reload keeps it.
  await agent.getByLabel('Description du projet').fill('Un portail pour prendre rendez-vous à l’état civil.');
  await agent.getByText(/Brouillon enregistré à/).waitFor();
  await agent.reload();
  assert.equal(
    await agent.getByLabel('Description du projet').inputValue(),
    'Un portail pour prendre rendez-vous à l’état civil.',
  );
  await agent.locator('fieldset:has-text("porté par l’exécutif") label:has-text("Oui")').click();
  await agent.locator('fieldset:has-text("zone de revitalisation rurale") label:has-text("Non")').click();
  await next(agent);
  await agent.getByLabel('Situation actuelle').fill('Tout se fait au guichet, sur rendez-vous téléphonique.');
  await agent.getByLabel('Besoins identifiés').fill('500 demandes par mois, 3 jours d’attente.');
  await next(agent);
  await agent.getByLabel('Objectifs du projet').fill('La moitié des rendez-vous pris en ligne en un an.');
  await next(agent);
  await agent.getByLabel('Impact attendu pour les usagers et les agents').fill('Moins d’attente, moins d’appels.');
  await agent.getByLabel('Indicateurs de suivi').fill('Part des rendez-vous pris en ligne.');
  await next(agent);
  await agent.getByLabel('Date de début prévue').fill('2021-07-01');
  await agent.getByLabel('Date de fin prévue du projet').fill('2022-06-30');
  await agent.locator('fieldset:has-text("déjà commencé") label:has-text("Non")').click();
  await next(agent);
  await agent.getByLabel('Nom et prénom').fill('Camille Martin');
  await agent.getByLabel('Adresse électronique').fill('contact@example.org');
  await next(agent);
  await agent.getByLabel('Nombre d’usagers visés').fill('20000');
  await next(agent);
  await agent.getByLabel(/^Prestations intellectuelles/).fill('40 000');
  await next(agent);
  // The quote, as a file chosen in the upload field; then on to the summary.
  await agent.getByText('Pièces demandées pour cette mesure').waitFor();
  await agent.locator('#piece-type').selectOption({ label: 'Devis' });
  await agent.locator('#piece-fichier').setInputFiles({
    name: 'devis-prestataire.pdf',
    mimeType: 'application/pdf',
    buffer: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
  });
  await agent.getByRole('button', { name: 'Joindre la pièce' }).click();
  await agent.waitForURL(/etape=pieces&enregistre=1/);
  await agent.getByRole('link', { name: 'devis-prestataire.pdf' }).waitFor();
  await audit(agent, 'pièces');
  await next(agent);

  // The summary: eligible, the indicative amount; submitting gives the number and receipt.
  const panel = agent.locator('#panneau');
  await panel.getByText('Éligible').waitFor();
  assert.match(await panel.innerText(), /Aide indicative/);
  assert.doesNotMatch(await agent.locator('main').innerText(), /axe3\.v1|commune:95127/);
  await audit(agent, 'récapitulatif');
  await agent.getByRole('button', { name: 'Déposer le dossier' }).click();
  await agent.waitForURL(/\/recepisse$/);
  const receipt = await agent.locator('main').innerText();
  const number = receipt.match(/ITN7-95-2021-\d{5}/)?.[0];
  assert.ok(number, receipt);
  assert.match(receipt, /Service instructeur/);
  assert.ok(await agent.getByRole('button', { name: 'Imprimer le récépissé' }).isVisible());
  await audit(agent, 'récépissé');

  // The Val-d'Oise instructor finds it in the queue and asks for a correction.
  const iContext = await env.browser.newContext({ bypassCSP: true });
  const instructor = await iContext.newPage();
  await login(instructor, base, 'instruction.95@demo.guichet.test');
  await instructor.goto(`${base}/instruction`);
  await instructor.getByRole('link', { name: number }).click();
  // The quote is there for the instructor, served as an attachment.
  const download = instructor.waitForEvent('download');
  await instructor.getByRole('link', { name: 'devis-prestataire.pdf' }).click();
  assert.equal((await download).suggestedFilename(), 'devis-prestataire.pdf');
  await instructor.getByRole('button', { name: 'Prendre en instruction' }).click();
  await instructor.getByText('Le dossier est pris en instruction.').waitFor();
  await audit(instructor, 'dossier en instruction');
  await instructor.getByLabel('Ce qu’il faut corriger').fill('Précisez le nombre d’usagers par quartier.');
  await instructor.getByRole('button', { name: 'Demander la correction' }).click();
  await instructor.getByText('La demande de correction est envoyée').waitFor();

  // The Yvelines instructor cannot open it.
  const yContext = await env.browser.newContext({ bypassCSP: true });
  const yvelines = await yContext.newPage();
  await login(yvelines, base, 'instruction.78@demo.guichet.test');
  await yvelines.goto(`${base}/instruction?onglet=tous`);
  assert.doesNotMatch(await yvelines.locator('main').innerText(), new RegExp(number));
  const refused = await yvelines.goto(`${base}/instruction/dossiers/${number}`);
  assert.equal(refused.status(), 403);

  // The agent reads the request, corrects, files again.
  await agent.goto(`${base}${path}`);
  await agent.locator('.fr-alert--warning').getByText('Précisez le nombre d’usagers par quartier.').waitFor();
  await agent.goto(`${base}${path}?etape=relation_usager`);
  await agent.getByLabel('Équipe projet (compétences, disponibilité)').fill('Deux agents à mi-temps ; 8 000 usagers au centre, 12 000 ailleurs.');
  await agent.getByRole('button', { name: 'Enregistrer', exact: true }).click();
  await agent.waitForURL(/enregistre=1/);
  await agent.goto(`${base}${path}?etape=depot`);
  await agent.getByRole('button', { name: 'Déposer à nouveau le dossier corrigé' }).click();
  await agent.waitForURL(/\/recepisse$/);

  // The exceptional rate needs a justification; then the proposal, then the decision.
  await instructor.goto(`${base}/instruction/dossiers/${number}`);
  await instructor.getByLabel('Taux (%)').fill('80');
  await instructor.getByLabel('Montant proposé (€)').fill('32000');
  await instructor.getByRole('button', { name: 'Enregistrer la proposition' }).click();
  await instructor.getByText(/justification écrite est exigée/).waitFor();
  await instructor.getByLabel('Taux (%)').fill('80');
  await instructor.getByLabel('Montant proposé (€)').fill('32000');
  await instructor.getByLabel(/^Justification/).fill('Commune de plus de 15 000 habitants : taux exceptionnel.');
  await instructor.getByRole('button', { name: 'Enregistrer la proposition' }).click();
  await instructor.getByText('La proposition est enregistrée').waitFor();
  await instructor.getByRole('button', { name: 'Accepter selon la proposition' }).click();
  await instructor.getByText('Le dossier est accepté.').waitFor();

  // The agent sees the decision in her list.
  await agent.goto(`${base}/espace/dossiers`);
  const row = agent.locator('tr', { hasText: number });
  assert.match(await row.innerText(), /accepté/i);
  await audit(agent, 'mes dossiers');
  await yContext.close();
  await iContext.close();
  await context.close();
});

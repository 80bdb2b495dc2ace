// Saves a draft's step as the agent types (the form's own POST, with the header
// X-Guichet-Brouillon: the answer is JSON with the new version and the verdict panel), and
// prints receipts. Without JavaScript the form's buttons do the same, one step at a time.
(function () {
  "use strict";
  var print = document.querySelector("[data-imprimer]");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
  var form = document.querySelector("form[data-brouillon]");
  if (!form || !window.fetch || !window.URLSearchParams) return;
  var status = document.getElementById("etat-brouillon");
  var panel = document.getElementById("panneau");
  var version = form.querySelector("input[name=version]");
  var timer = null;
  var running = false;
  var again = false;
  var say = function (text) { if (status) status.textContent = text; };

  function save() {
    if (running) { again = true; return; }
    running = true;
    var body = new URLSearchParams(new FormData(form));
    body.set("aller", form.querySelector("input[name=etape]").value);
    say("Enregistrement…");
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Guichet-Brouillon": "1", "Accept": "application/json" },
      body: body
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, json: j }; });
    }).then(function (res) {
      if (res.ok) {
        version.value = String(res.json.version);
        if (panel && typeof res.json.panneau === "string") panel.innerHTML = res.json.panneau;
        var now = new Date();
        say("Brouillon enregistré à " + now.toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" }) + ".");
      } else {
        say("Non enregistré : " + (res.json.detail || "erreur") + " Le bouton « Enregistrer » affiche le détail.");
      }
    }).catch(function () {
      say("Non enregistré : la connexion a échoué. Vos saisies restent dans la page ; réessayez avec le bouton « Enregistrer ».");
    }).then(function () {
      running = false;
      if (again) { again = false; save(); }
    });
  }

  function later() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(save, 1200);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();

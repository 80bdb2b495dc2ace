// Accessible collectivité autocomplete (WAI-ARIA 1.2 combobox with a listbox popup).
// Progressive enhancement: without JavaScript the field is a plain search form.
// Two uses: on the search page, choosing a suggestion opens its page; with
// data-autocomplete-cible="ID" (the simulator), it fills the field with the name and the hidden
// input ID with TYPE:CODE, and the form is sent as usual.
(function () {
  'use strict';

  function enhance(container) {
    var input = container.querySelector('input');
    var list = container.querySelector('[role="listbox"]');
    var status = document.getElementById(input.id + '-statut');
    var vintage = container.getAttribute('data-millesime') || '';
    var select = document.getElementById('millesime');
    var target = document.getElementById(container.getAttribute('data-autocomplete-cible') || '');
    var results = [];
    var active = -1;
    var timer = null;
    var lastQuery = '';
    var controller = null;

    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'false');
    input.setAttribute('aria-controls', list.id);
    var described = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    if (described.indexOf(status.id) < 0) described.push(status.id);
    input.setAttribute('aria-describedby', described.join(' '));

    function close() {
      list.hidden = true;
      input.setAttribute('aria-expanded', 'false');
      input.removeAttribute('aria-activedescendant');
      active = -1;
    }

    function setActive(index) {
      var options = list.querySelectorAll('[role="option"]');
      if (!options.length) return;
      active = (index + options.length) % options.length;
      options.forEach(function (o, i) { o.setAttribute('aria-selected', i === active ? 'true' : 'false'); });
      input.setAttribute('aria-activedescendant', options[active].id);
      options[active].scrollIntoView({ block: 'nearest' });
    }

    function choose(index) {
      var r = results[index];
      if (!r) return;
      if (!target) { window.location.href = r.url; return; }
      input.value = r.nom;
      lastQuery = r.nom;
      target.value = r.type + ':' + r.code;
      // A choice made here replaces one made in the list shown without JavaScript.
      if (target.form) {
        Array.prototype.forEach.call(target.form.querySelectorAll('input[name="choix"]'), function (c) { c.checked = false; });
      }
      close();
      status.textContent = r.nom + ' (' + r.type + ' ' + r.code + ') choisie.';
    }

    function render() {
      list.innerHTML = '';
      results.forEach(function (r, i) {
        var li = document.createElement('li');
        li.id = list.id + '-' + i;
        li.setAttribute('role', 'option');
        li.setAttribute('aria-selected', 'false');
        li.className = 'guichet-autocomplete__option';
        var name = document.createElement('span');
        name.textContent = r.nom;
        var detail = document.createElement('small');
        var parts = [r.type + ' ' + r.code];
        if (r.departement_nom) parts.push(r.departement_nom);
        if (r.codes_postaux && r.codes_postaux.length) parts.push(r.codes_postaux.join(', '));
        parts.push(r.population.toLocaleString('fr-FR') + ' hab.');
        detail.textContent = parts.join(' · ');
        li.appendChild(name);
        li.appendChild(detail);
        li.addEventListener('mousedown', function (e) { e.preventDefault(); choose(i); });
        list.appendChild(li);
      });
      if (results.length) {
        list.hidden = false;
        input.setAttribute('aria-expanded', 'true');
        status.textContent = results.length + (results.length > 1 ? ' suggestions' : ' suggestion') +
          ' : flèches haut et bas pour parcourir, Entrée pour ' + (target ? 'choisir.' : 'ouvrir.');
      } else {
        close();
        status.textContent = input.value.trim() ? 'Aucune collectivité trouvée.' : '';
      }
    }

    function search() {
      var q = input.value.trim();
      if (q === lastQuery) return;
      lastQuery = q;
      if (q.length < 2) { results = []; render(); return; }
      if (controller) controller.abort();
      controller = new AbortController();
      var v = select ? select.value : vintage;
      var url = '/api/v1/collectivites?limite=8&q=' + encodeURIComponent(q) + (v ? '&millesime=' + encodeURIComponent(v) : '');
      fetch(url, { headers: { Accept: 'application/json' }, signal: controller.signal })
        .then(function (r) { return r.ok ? r.json() : { resultats: [] }; })
        .then(function (data) { results = data.resultats || []; active = -1; render(); })
        .catch(function (e) { if (e.name !== 'AbortError') { results = []; render(); } });
    }

    input.addEventListener('input', function () {
      // What was chosen no longer holds once the name is edited.
      if (target) target.value = '';
      clearTimeout(timer);
      timer = setTimeout(search, 150);
    });
    input.addEventListener('keydown', function (e) {
      var open = !list.hidden;
      if (e.key === 'ArrowDown') {
        e.preventDefault();
        if (!open && results.length) { list.hidden = false; input.setAttribute('aria-expanded', 'true'); }
        setActive(active + 1);
      } else if (e.key === 'ArrowUp') {
        e.preventDefault();
        if (open) setActive(active - 1);
      } else if (e.key === 'Enter') {
        if (open && active >= 0) { e.preventDefault(); choose(active); }
      } else if (e.key === 'Escape') {
        if (open) { e.preventDefault(); close(); }
      }
    });
    input.addEventListener('blur', function () { setTimeout(close, 100); });
    if (select) select.addEventListener('change', function () { lastQuery = ''; search(); });
  }

  document.querySelectorAll('[data-autocomplete]').forEach(enhance);
})();

// The visage review page: plain JavaScript, no build step. Every view is built from the JSON API
// with createElement/textContent only (no HTML strings are ever parsed), so a name is always text.
'use strict';

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
const namesList = document.getElementById('people-names');
const FACE_PAGE = 200; // faces loaded per page on a person's page
const UNKNOWN_PAGE = 60;
const CLUSTER_PAGE = 10; // clusters loaded per page on the review page
let generation = 0; // bumped on every route change; stale answers are dropped

// ---- small helpers -------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function say(message, error = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle('error', error);
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) throw new Error((data && data.error) || response.statusText);
  return data;
}

// Run an action; report its outcome (or error) in the status line. Returns the answer or null.
async function act(what, path, body) {
  say(what + '…');
  try {
    const answer = await api(path, body);
    return answer;
  } catch (e) {
    say(what + ' failed: ' + e.message, true);
    return null;
  }
}

function plural(n, one, many) { return n + ' ' + (n === 1 ? one : (many || one + 's')); }

// Grids that page through many faces load images as they scroll into view; the review list (at
// most 10 clusters x 12 faces a page) loads its images at once.
function faceImage(id, lazy = true) {
  return el('img', { class: 'face', src: '/faces/' + id + '.jpg', alt: id, loading: lazy ? 'lazy' : 'eager', width: 256, height: 256, 'data-face': id });
}

function nameInput(placeholder) {
  return el('input', { type: 'text', class: 'name', list: 'people-names', placeholder, autocomplete: 'off', spellcheck: 'false', maxlength: '200' });
}

async function refreshNames() {
  try {
    const people = await api('/api/people?hidden=1');
    namesList.replaceChildren(...people.map((p) => el('option', { value: p.name })));
    return people;
  } catch (_) {
    return [];
  }
}

async function refreshCounts() {
  try {
    const [c, u, p] = await Promise.all([api('/api/clusters?limit=0'), api('/api/faces?unassigned=1&limit=0'), api('/api/progress')]);
    document.getElementById('count-review').textContent = c.total ? '(' + c.total + ')' : '';
    document.getElementById('count-unknown').textContent = u.total ? '(' + u.total + ')' : '';
    const progress = document.getElementById('progress');
    progress.textContent = (p.named + p.matched) + ' of ' + p.faces + ' faces named (' + p.matched + ' matched) · ' +
      p.suggested + ' suggested · ' + p.left + ' left';
    progress.dataset.left = p.left;
    progress.dataset.suggested = p.suggested;
  } catch (_) { /* the status line already says what failed */ }
}

// ---- undo --------------------------------------------------------------------------------------

async function undo() {
  const answer = await act('Undoing', '/api/undo', {});
  if (!answer) return;
  if (!answer.undone.length) { say('Nothing to undo.'); return; }
  const a = answer.undone[0];
  route();
  say('Undid ' + a.kind + ': ' + a.what + '.');
}
document.getElementById('undo').addEventListener('click', undo);

function joinedText(answer) {
  return answer.joined > 0 ? '; matching found ' + plural(answer.joined, 'more face') : '';
}

// A sentinel after `container` that calls `load` (which returns whether there is more) while it
// is near the screen: paging without a "more" click, and without loading what nobody scrolls to.
// Both the observer and scrolling wake it (an observer alone misses a sentinel that stays in view
// while a page arrives).
function pager(container, load) {
  const sentinel = el('div', { class: 'sentinel' });
  container.after(sentinel);
  let busy = false, done = false;
  const near = () => sentinel.getBoundingClientRect().top < innerHeight + 800;
  const stop = () => {
    done = true;
    observer.disconnect();
    window.removeEventListener('scroll', pump);
    sentinel.remove();
  };
  const pump = async () => {
    if (!sentinel.isConnected) { stop(); return; }
    if (busy || done) return;
    busy = true;
    try {
      while (!done && sentinel.isConnected && near()) if (!(await load())) stop();
    } catch (e) {
      say(e.message, true);
      stop();
    }
    busy = false;
  };
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) pump();
  }, { rootMargin: '800px' });
  observer.observe(sentinel);
  window.addEventListener('scroll', pump, { passive: true });
  return observer;
}

// ---- photo viewer --------------------------------------------------------------------------

const viewer = document.getElementById('viewer');
const viewerImg = document.getElementById('viewer-img');
const viewerFrame = document.getElementById('viewer-frame');

async function openPhoto(photoId) {
  let photo;
  try { photo = await api('/api/photos/' + photoId); } catch (e) { say(e.message, true); return; }
  // A video is shown at the moment of its first face, with the faces of that still.
  const at = photo.faces.length ? photo.faces[0].moment : undefined;
  document.getElementById('viewer-title').textContent = photo.path
    + (at !== undefined ? ' at ' + at.toFixed(1) + ' s' : '') + (photo.gone ? ' (gone)' : '');
  viewerFrame.querySelectorAll('.box').forEach((b) => b.remove());
  viewerImg.src = '/photos/' + photoId + '.jpg';
  const w = photo.width || 1, h = photo.height || 1;
  for (const f of photo.faces) {
    if (f.moment !== at) continue;
    const label = f.person || (f.cluster ? 'unnamed ' + f.cluster : 'unknown') ;
    const box = el('a', { class: 'box' + (f.person ? '' : ' unnamed'), title: f.id, href: f.person ? '#/person/' + encodeURIComponent(f.person) : null },
      el('span', { text: label }));
    box.style.left = (100 * f.x / w) + '%';
    box.style.top = (100 * f.y / h) + '%';
    box.style.width = (100 * f.w / w) + '%';
    box.style.height = (100 * f.h / h) + '%';
    box.addEventListener('click', () => closePhoto());
    viewerFrame.append(box);
  }
  viewer.hidden = false;
  document.getElementById('viewer-close').focus();
}

function closePhoto() { viewer.hidden = true; viewerImg.removeAttribute('src'); }
document.getElementById('viewer-close').addEventListener('click', closePhoto);
viewer.addEventListener('click', (e) => { if (e.target === viewer || e.target.classList.contains('viewer-photo')) closePhoto(); });

// ---- review: unnamed clusters --------------------------------------------------------------

function clusterRow(c) {
  const row = el('section', { class: 'cluster', tabindex: '-1', 'data-cluster': c.id });
  const excluded = new Set();
  const faces = el('div', { class: 'faces' });
  let shown = 0;
  const addFaces = (list) => {
    for (const f of list) {
      const tile = el('button', { type: 'button', class: 'tile', title: 'Click if this is not the same person' }, faceImage(f.id, false));
      tile.addEventListener('click', () => {
        if (excluded.has(f.id)) excluded.delete(f.id); else excluded.add(f.id);
        tile.classList.toggle('out', excluded.has(f.id));
        updateMeta();
      });
      faces.append(tile);
    }
    shown += list.length;
    more.hidden = shown >= c.faces;
  };
  const meta = el('div', { class: 'meta' });
  const updateMeta = () => {
    meta.textContent = plural(c.faces, 'face') + ' (' + c.id + ')' + (excluded.size ? ', ' + excluded.size + ' taken out' : '');
  };
  // Faces in no group that look like this one (they come after the rows: /api/also): named with
  // it unless taken out.
  const also = [];
  const alsoFaces = el('div', { class: 'faces also' });
  const alsoLabel = el('div', { class: 'also-label' });
  alsoLabel.hidden = alsoFaces.hidden = true;
  row.setAlso = (list) => {
    if (row.classList.contains('done')) return;
    for (const f of list) {
      also.push(f.id);
      const tile = el('button', { type: 'button', class: 'tile also', title: 'Looks like them; click if it is someone else' }, faceImage(f.id, false));
      tile.addEventListener('click', () => {
        if (excluded.has(f.id)) excluded.delete(f.id); else excluded.add(f.id);
        tile.classList.toggle('out', excluded.has(f.id));
        updateMeta();
      });
      alsoFaces.append(tile);
    }
    alsoLabel.textContent = 'And ' + plural(also.length, 'face') + ' in no group that look like them:';
    alsoLabel.hidden = alsoFaces.hidden = also.length === 0;
  };
  const more = el('button', { type: 'button', class: 'more-faces', text: 'More faces' });
  more.addEventListener('click', async () => {
    try {
      const page = await api('/api/faces?cluster=' + c.id + '&offset=' + shown + '&limit=120');
      addFaces(page.faces);
    } catch (e) { say(e.message, true); }
  });
  const input = nameInput('Who is this?');
  const nameButton = el('button', { type: 'button', class: 'primary', text: 'Name' });
  const ignoreButton = el('button', { type: 'button', class: 'ignore', text: 'Ignore' });
  const submit = async () => {
    const name = input.value.trim();
    if (!name) { input.focus(); return; }
    nameButton.disabled = ignoreButton.disabled = true;
    const answer = await act('Naming ' + c.id, '/api/name', { target: c.id, name, except: [...excluded], also: also.filter((id) => !excluded.has(id)) });
    nameButton.disabled = ignoreButton.disabled = false;
    if (!answer) return;
    const text = 'Named ' + plural(answer.named, 'face') + ' “' + answer.person + '”' +
      (answer.rejected ? ' (' + answer.rejected + ' taken out)' : '') + joinedText(answer) + '.';
    lastNamed = answer.person;
    finish(text);
    refreshSuggestions();
  };
  const ignore = async () => {
    const answer = await act('Ignoring ' + c.id, '/api/ignore', { cluster: c.id });
    if (answer) finish('Ignored ' + c.id + ' (' + plural(answer.faces, 'face') + ').');
  };
  const finish = (text) => {
    say(text);
    const next = row.nextElementSibling;
    row.classList.add('done');
    row.replaceChildren(el('p', { class: 'result', text }));
    if (next && next.classList.contains('cluster')) next.focus();
    refreshNames();
    refreshCounts();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); submit(); }
    if (e.key === 'Escape') { e.preventDefault(); input.blur(); row.focus(); }
  });
  nameButton.addEventListener('click', submit);
  ignoreButton.addEventListener('click', ignore);
  row.focusName = () => input.focus();
  row.ignore = ignore;
  row.append(meta, faces);
  row.append(alsoLabel, alsoFaces);
  row.append(el('div', { class: 'controls' }, input, nameButton, ignoreButton, more));
  addFaces(c.preview);
  updateMeta();
  return row;
}

// ---- suggestions: "Is this also NAME?" -------------------------------------------------------

let lastNamed = null; // the person named last: their suggestions come first

function suggestionGroup(g) {
  const box = el('section', { class: 'suggestion', 'data-person': g.person });
  const out = new Set();
  const faces = el('div', { class: 'faces' });
  const accept = el('button', { type: 'button', class: 'primary accept' });
  const count = () => {
    const kept = g.faces.length - out.size;
    accept.textContent = kept ? 'Yes, ' + plural(kept, 'face is', 'faces are') + ' ' + g.person : 'None of these is ' + g.person;
  };
  for (const f of g.faces) {
    const tile = el('button', { type: 'button', class: 'tile', title: 'Click if this is not ' + g.person, 'data-face': f.id }, faceImage(f.id, false));
    tile.addEventListener('click', () => {
      if (out.has(f.id)) out.delete(f.id); else out.add(f.id);
      tile.classList.toggle('out', out.has(f.id));
      count();
    });
    faces.append(tile);
  }
  accept.addEventListener('click', async () => {
    accept.disabled = true;
    const kept = g.faces.map((f) => f.id).filter((id) => !out.has(id));
    const answer = await act('Accepting', '/api/accept', { person: g.person, faces: kept, except: [...out] });
    accept.disabled = false;
    if (!answer) return;
    lastNamed = answer.person;
    say('Accepted ' + plural(answer.named, 'face') + ' as “' + answer.person + '”' +
      (answer.rejected ? ' (' + answer.rejected + ' taken out)' : '') + joinedText(answer) + '.');
    refreshNames();
    refreshCounts();
    refreshSuggestions();
  });
  count();
  box.append(el('h2', {}, 'Is this also ', el('span', { class: 'person-name', text: g.person }), '?'),
    el('p', { class: 'hint', text: 'Click a face that is someone else to take it out.' }), faces,
    el('div', { class: 'controls' }, accept));
  return box;
}

async function refreshSuggestions() {
  const holder = document.getElementById('suggestions');
  if (!holder) return;
  let groups = [];
  try { groups = (await api('/api/suggestions')).groups; } catch (e) { say(e.message, true); return; }
  if (lastNamed) groups.sort((a, b) => (b.person === lastNamed) - (a.person === lastNamed));
  holder.replaceChildren(...groups.map(suggestionGroup));
}

async function review(gen) {
  const list = el('div', { class: 'clusters' });
  main.replaceChildren(
    el('div', { id: 'suggestions' }),
    el('h1', { text: 'Review: who are these people?' }),
    el('p', { class: 'hint' },
      'Type a name (an existing one merges) and press Enter; click a face that does not belong to take it out. Keys: ',
      el('kbd', { text: 'j' }), ' / ', el('kbd', { text: 'k' }), ' next / previous group, ',
      el('kbd', { text: 'n' }), ' name, ', el('kbd', { text: 'i' }), ' ignore, ',
      el('kbd', { text: 'm' }), ' more faces, ', el('kbd', { text: 'u' }), ' undo, ', el('kbd', { text: 'Esc' }), ' leave the name box.'),
    list);
  let offset = 0, total = null;
  const load = async () => {
    const page = await api('/api/clusters?offset=' + offset + '&limit=' + CLUSTER_PAGE);
    if (gen !== generation) return false;
    total = page.total;
    const rows = page.clusters.map(clusterRow);
    list.append(...rows);
    offset += page.clusters.length;
    // The faces that look like each group, for the whole page at once (a scan of the faces in no
    // group): the rows show first.
    if (rows.length) {
      api('/api/also?clusters=' + page.clusters.map((c) => c.id).join(',')).then((a) => {
        if (gen !== generation) return;
        rows.forEach((row, k) => row.setAlso(a.also[page.clusters[k].id] || []));
      }).catch((e) => say(e.message, true));
    }
    if (total === 0) list.append(el('p', { class: 'empty', text: 'Nothing to review: every group of faces has a name or is ignored. See Unknown for single faces.' }));
    return offset < total && page.clusters.length > 0;
  };
  try {
    if (await load()) pager(list, load);
    const first = list.querySelector('.cluster');
    if (first) first.focus();
    await refreshSuggestions();
  } catch (e) { say(e.message, true); }
}

function currentCluster() {
  const active = document.activeElement;
  const row = active && active.closest ? active.closest('.cluster') : null;
  return row || main.querySelector('.cluster:not(.done)');
}

function moveCluster(step) {
  const rows = [...main.querySelectorAll('.cluster:not(.done)')];
  if (!rows.length) return;
  const i = rows.indexOf(currentCluster());
  const next = rows[Math.max(0, Math.min(rows.length - 1, i < 0 ? 0 : i + step))];
  next.focus();
  next.scrollIntoView({ block: 'nearest' });
}

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !viewer.hidden) { closePhoto(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = e.target && (e.target.tagName === 'INPUT' || e.target.tagName === 'TEXTAREA');
  if (e.target && e.target.tagName === 'BUTTON' && (e.key === 'Enter' || e.key === ' ')) return;
  if (typing) return;
  if (e.key === 'u') { e.preventDefault(); undo(); return; }
  if (!location.hash.startsWith('#/review') && location.hash !== '' && location.hash !== '#/') return;
  const row = currentCluster();
  if (e.key === 'j' || e.key === 'ArrowDown') { e.preventDefault(); moveCluster(1); }
  else if (e.key === 'k' || e.key === 'ArrowUp') { e.preventDefault(); moveCluster(-1); }
  else if ((e.key === 'n' || e.key === 'Enter') && row && row.focusName) { e.preventDefault(); row.focusName(); }
  else if (e.key === 'i' && row && row.ignore) { e.preventDefault(); row.ignore(); }
  else if (e.key === 'm' && row) { const m = row.querySelector('.more-faces'); if (m && !m.hidden) { e.preventDefault(); m.click(); } }
});

// ---- people ----------------------------------------------------------------------------------

async function peopleView(gen) {
  const showHidden = el('input', { type: 'checkbox', id: 'show-hidden' });
  showHidden.checked = sessionStorage.getItem('show-hidden') === '1';
  const grid = el('div', { class: 'people' });
  const fill = async () => {
    sessionStorage.setItem('show-hidden', showHidden.checked ? '1' : '0');
    const people = await api('/api/people' + (showHidden.checked ? '?hidden=1' : ''));
    if (gen !== generation) return;
    grid.replaceChildren(...people.map((p) => el('a', { class: 'person' + (p.hidden ? ' hidden-person' : ''), href: '#/person/' + encodeURIComponent(p.name) },
      p.face ? faceImage(p.face) : el('div', { class: 'face' }),
      el('div', { class: 'name', text: p.name }),
      el('div', { class: 'n', text: plural(p.faces, 'face') + ' in ' + plural(p.photos, 'photo') + (p.hidden ? ', hidden' : '') }))));
    if (!people.length) grid.append(el('p', { class: 'empty', text: 'Nobody is named yet: start with Review.' }));
  };
  showHidden.addEventListener('change', () => fill().catch((e) => say(e.message, true)));
  main.replaceChildren(el('h1', { text: 'People' }),
    el('div', { class: 'toolbar' }, el('label', {}, showHidden, ' show hidden people')), grid);
  try { await fill(); } catch (e) { say(e.message, true); }
}

// ---- one person ------------------------------------------------------------------------------

async function personView(gen, name) {
  const people = await refreshNames();
  const me = people.find((p) => p.name.toLowerCase() === name.toLowerCase());
  if (gen !== generation) return;
  if (!me) { main.replaceChildren(el('h1', { text: 'No person named “' + name + '”' })); return; }
  name = me.name;
  let total = me.faces;
  const count = el('span', { class: 'count', text: plural(total, 'face') });
  const grid = el('div', { class: 'grid' });
  const order = []; // face ids in grid order, for shift-click ranges
  const tiles = new Map();
  const selected = new Set();
  let anchor = null;

  const selectedCount = el('span', { class: 'selected-count' });
  const moveInput = nameInput('Move to…');
  const selectionBar = el('div', { class: 'toolbar selection', hidden: '' },
    selectedCount,
    el('button', { type: 'button', class: 'reject', text: 'Not ' + name, onclick: () => reject() }),
    el('button', { type: 'button', class: 'confirm', text: 'Yes, ' + name, onclick: () => confirm([...selected]) }),
    moveInput,
    el('button', { type: 'button', class: 'move', text: 'Move', onclick: () => move() }),
    el('button', { type: 'button', text: 'Clear selection', onclick: () => { selected.clear(); paint(); } }));
  const paint = () => {
    for (const [id, tile] of tiles) tile.classList.toggle('selected', selected.has(id));
    selectedCount.textContent = plural(selected.size, 'face') + ' selected';
    selectionBar.hidden = selected.size === 0;
  };
  const toggle = (id, range) => {
    if (range && anchor !== null) {
      const a = order.indexOf(anchor), b = order.indexOf(id);
      for (let i = Math.min(a, b); i <= Math.max(a, b); i++) selected.add(order[i]);
    } else if (selected.has(id)) selected.delete(id);
    else selected.add(id);
    anchor = id;
    paint();
  };
  const removeFaces = (ids) => {
    for (const id of ids) {
      const t = tiles.get(id);
      if (t) t.remove();
      tiles.delete(id);
      selected.delete(id);
      const i = order.indexOf(id);
      if (i >= 0) order.splice(i, 1);
    }
    total -= ids.length;
    count.textContent = plural(total, 'face');
    paint();
  };
  const reject = async () => {
    const ids = [...selected];
    const answer = await act('Taking ' + plural(ids.length, 'face') + ' away from ' + name, '/api/reject', { faces: ids, person: name });
    if (answer) { removeFaces(ids); for (const id of ids) matched.delete(id); paintMatched(); say(plural(answer.rejected, 'face') + ' marked as not ' + name + '.'); refreshCounts(); }
  };
  const matched = new Set(); // loaded faces matched automatically, not yet confirmed
  const confirmAll = el('button', { type: 'button', class: 'confirm-all', hidden: '', onclick: () => confirm([...matched]) });
  const paintMatched = () => {
    confirmAll.textContent = 'Confirm ' + plural(matched.size, 'matched face');
    confirmAll.hidden = matched.size === 0;
  };
  const confirm = async (ids) => {
    if (!ids.length) return;
    const answer = await act('Confirming ' + plural(ids.length, 'face'), '/api/confirm', { faces: ids });
    if (!answer) return;
    for (const id of ids) {
      const t = tiles.get(id);
      if (t) { t.classList.remove('matched'); t.classList.add('manual'); t.querySelector('.how').textContent = 'by hand'; }
      matched.delete(id);
      selected.delete(id);
    }
    paint();
    paintMatched();
    say(plural(answer.confirmed, 'face') + ' confirmed as ' + name + joinedText(answer) + '.');
    refreshCounts();
  };
  const move = async () => {
    const to = moveInput.value.trim();
    if (!to) { moveInput.focus(); return; }
    const ids = [...selected];
    const answer = await act('Moving ' + plural(ids.length, 'face') + ' to ' + to, '/api/split', { faces: ids, to });
    if (answer) { removeFaces(ids); moveInput.value = ''; say('Moved ' + plural(answer.moved, 'face') + ' to “' + answer.to + '”' + joinedText(answer) + '.'); refreshNames(); }
  };

  const renameInput = el('input', { type: 'text', class: 'rename', value: name, maxlength: '200' });
  const mergeInput = nameInput('Merge into…');
  const rename = async () => {
    const to = renameInput.value.trim();
    if (!to || to === name) return;
    if (await act('Renaming', '/api/rename', { old: name, new: to })) location.hash = '#/person/' + encodeURIComponent(to);
  };
  const merge = async () => {
    const into = mergeInput.value.trim();
    if (!into) { mergeInput.focus(); return; }
    const answer = await act('Merging', '/api/merge', { from: name, into });
    if (answer) { location.hash = '#/person/' + encodeURIComponent(answer.into); say('Merged ' + name + ' into ' + answer.into + '.'); }
  };
  const hide = async () => {
    const answer = await act(me.hidden ? 'Showing' : 'Hiding', '/api/hide', { name, hidden: !me.hidden });
    if (answer) { me.hidden = answer.hidden; hideButton.textContent = me.hidden ? 'Show in People' : 'Hide from People'; say(name + (me.hidden ? ' is hidden.' : ' is shown.')); }
  };
  const hideButton = el('button', { type: 'button', class: 'hide', text: me.hidden ? 'Show in People' : 'Hide from People', onclick: hide });
  renameInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') rename(); });
  mergeInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') merge(); });
  moveInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') move(); });

  main.replaceChildren(
    el('h1', {}, el('span', { class: 'person-name', text: name }), ' ', count),
    el('div', { class: 'toolbar' },
      renameInput, el('button', { type: 'button', text: 'Rename', onclick: rename }),
      mergeInput, el('button', { type: 'button', text: 'Merge', onclick: merge }),
      hideButton, confirmAll),
    el('p', { class: 'hint', text: 'Newest photos first. Faces marked “matched” were found by matching; “by hand” ones were named or confirmed. Click a face to see its photo; tick faces (shift-click for a range) to confirm them, to say they are not ' + name + ' or to move them to someone else.' }),
    selectionBar, grid);

  let offset = 0;
  const load = async () => {
    const page = await api('/api/faces?person=' + encodeURIComponent(name) + '&offset=' + offset + '&limit=' + FACE_PAGE);
    if (gen !== generation) return false;
    for (const f of page.faces) {
      if (tiles.has(f.id)) continue;
      const check = el('button', { type: 'button', class: 'check', title: 'Select' });
      const auto = f.assigned === 'auto';
      const how = el('span', { class: 'how', text: auto ? 'matched' : 'by hand' });
      const tile = el('div', { class: 'tile ' + (auto ? 'matched' : 'manual'), 'data-face': f.id }, faceImage(f.id), check, how);
      if (auto) matched.add(f.id);
      check.addEventListener('click', (e) => { e.stopPropagation(); toggle(f.id, e.shiftKey); });
      tile.addEventListener('click', (e) => { if (selected.size || e.shiftKey) toggle(f.id, e.shiftKey); else openPhoto(f.photo); });
      tiles.set(f.id, tile);
      order.push(f.id);
      grid.append(tile);
    }
    offset += page.faces.length;
    paintMatched();
    return page.faces.length > 0 && offset < page.total;
  };
  try { if (await load()) pager(grid, load); } catch (e) { say(e.message, true); }
}

// ---- unknown: faces in no cluster ------------------------------------------------------------

async function unknownView(gen) {
  const grid = el('div', { class: 'grid unknown' });
  main.replaceChildren(el('h1', { text: 'Unknown faces' }),
    el('p', { class: 'hint', text: 'Faces in no group, largest first. Name one and matching pulls in the faces that look like it; “Not a face” and “Stranger” take a face off this list for good.' }), grid);
  // Each page goes on after the last face shown (a cursor): faces named or marked meanwhile
  // leave the list without shifting the next page, and a page deep in a large library costs
  // what the first one does.
  let after = null;
  const load = async () => {
    const page = await api('/api/faces?unassigned=1&limit=' + UNKNOWN_PAGE + (after ? '&after=' + after : ''));
    if (gen !== generation) return false;
    for (const f of page.faces) {
      const input = nameInput('Name');
      const img = faceImage(f.id);
      const mark = (verdict, words) => el('button', { type: 'button', class: verdict.replace(/_/g, '-'), text: words, onclick: async () => {
        const answer = await act('Marking ' + f.id, '/api/mark', { faces: [f.id], verdict });
        if (!answer) return;
        say(f.id + ' is ' + (verdict === 'stranger' ? 'a stranger' : 'not a face') + '.');
        card.classList.add('done');
        card.replaceChildren(img, el('span', { text: verdict === 'stranger' ? 'stranger' : 'not a face' }));
        refreshCounts();
      } });
      const card = el('div', { class: 'card', 'data-face': f.id }, img, input,
        el('div', { class: 'verdicts' }, mark('not_a_face', 'Not a face'), mark('stranger', 'Stranger')));
      img.addEventListener('click', () => openPhoto(f.photo));
      input.addEventListener('keydown', async (e) => {
        if (e.key !== 'Enter' || !input.value.trim()) return;
        e.preventDefault();
        const answer = await act('Naming ' + f.id, '/api/name', { target: f.id, name: input.value.trim() });
        if (!answer) return;
        const text = '“' + answer.person + '”' + joinedText(answer);
        say('Named ' + f.id + ' ' + text + '.');
        card.classList.add('done');
        card.replaceChildren(img, el('span', { text }));
        refreshNames();
        refreshCounts();
      });
      grid.append(card);
    }
    after = page.next;
    if (page.total === 0) grid.append(el('p', { class: 'empty', text: 'Every face is in a group.' }));
    return page.faces.length > 0 && after !== null;
  };
  try { if (await load()) pager(grid, load); } catch (e) { say(e.message, true); }
}

// ---- ignored groups ------------------------------------------------------------------------------

async function ignoredView(gen) {
  const list = el('div', { class: 'clusters' });
  main.replaceChildren(el('h1', { text: 'Ignored groups' }),
    el('p', { class: 'hint', text: 'Groups said to be nobody of interest. Bring one back to name it.' }), list);
  const answer = await api('/api/ignored');
  if (gen !== generation) return;
  for (const c of answer.clusters) {
    const row = el('section', { class: 'cluster ignored', 'data-cluster': c.id });
    const back = el('button', { type: 'button', class: 'unignore', text: 'Bring back', onclick: async () => {
      const a = await act('Bringing back ' + c.id, '/api/unignore', { cluster: c.id });
      if (!a) return;
      say(c.id + ' is back in Review (' + plural(a.faces, 'face') + ').');
      row.classList.add('done');
      row.replaceChildren(el('p', { class: 'result', text: c.id + ' is back in Review.' }));
      refreshCounts();
    } });
    row.append(el('div', { class: 'meta', text: plural(c.faces, 'face') + ' (' + c.id + ')' }),
      el('div', { class: 'faces' }, ...c.preview.map((f) => faceImage(f.id, false))),
      el('div', { class: 'controls' }, back));
    list.append(row);
  }
  if (!answer.clusters.length) list.append(el('p', { class: 'empty', text: 'No group is ignored.' }));
}

// ---- routing ---------------------------------------------------------------------------------

function route() {
  const gen = ++generation;
  closePhoto();
  const hash = location.hash || '#/review';
  for (const id of ['review', 'people', 'unknown', 'ignored']) {
    document.getElementById('nav-' + id).classList.toggle('current', hash.startsWith('#/' + id) || (id === 'people' && hash.startsWith('#/person/')));
  }
  document.querySelectorAll('.sentinel').forEach((s) => s.remove());
  let view;
  if (hash.startsWith('#/person/')) view = personView(gen, decodeURIComponent(hash.slice('#/person/'.length)));
  else if (hash.startsWith('#/people')) view = peopleView(gen);
  else if (hash.startsWith('#/unknown')) view = unknownView(gen);
  else if (hash.startsWith('#/ignored')) view = ignoredView(gen);
  else view = review(gen);
  view.catch((e) => say(e.message, true));
  refreshCounts();
}

window.addEventListener('hashchange', route);
refreshNames();
route();

// The torchface photo library page: plain modern JS over the service's JSON API
// (/docs/openapi.json). The API key, when the server has one, is kept in
// localStorage and sent as x-api-key; images are fetched with it and shown
// through blob: URLs.
const $ = (sel) => document.querySelector(sel);
const KEY = 'torchface.apiKey';

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

let statusTimer = null;
function say(message, error = false) {
  const s = $('#status');
  s.textContent = message;
  s.classList.toggle('error', error);
  s.classList.remove('hidden');
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => s.classList.add('hidden'), error ? 6000 : 2500);
}

let asking = null;
function askKey() {
  // One dialog for however many requests were refused at once.
  asking ??= new Promise((resolve) => {
    const d = $('#key-dialog');
    $('#key-input').value = localStorage.getItem(KEY) ?? '';
    d.addEventListener(
      'close',
      () => {
        if (d.returnValue === 'ok') localStorage.setItem(KEY, $('#key-input').value.trim());
        resolve(d.returnValue === 'ok');
      },
      { once: true },
    );
    d.showModal();
  }).finally(() => (asking = null));
  return asking;
}

/** fetch with the key; JSON in and out unless body is FormData; an error reply is thrown as Error(message). */
async function api(path, { method = 'GET', body, raw = false } = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const headers = {};
    const key = localStorage.getItem(KEY);
    if (key) headers['x-api-key'] = key;
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const r = await fetch(path, { method, headers, body: payload });
    if (r.status === 401 && (await askKey())) continue;
    if (!r.ok) {
      let message = `${r.status} ${r.statusText}`;
      try {
        message = (await r.json()).error.message;
      } catch {}
      throw new Error(message);
    }
    return raw ? r : r.json();
  }
  throw new Error('missing or wrong API key');
}

const blobUrls = new Map();
/** An <img> whose picture is fetched with the key (cached per URL). */
function keyedImg(path, props = {}) {
  const img = el('img', { alt: '', ...props });
  const cached = blobUrls.get(path);
  if (cached) img.src = cached;
  else
    api(path, { raw: true })
      .then((r) => r.blob())
      .then((b) => {
        const u = URL.createObjectURL(b);
        blobUrls.set(path, u);
        img.src = u;
      })
      .catch(() => img.classList.add('broken'));
  return img;
}
function forgetImages() {
  for (const u of blobUrls.values()) URL.revokeObjectURL(u);
  blobUrls.clear();
}

// Views ------------------------------------------------------------------------

function show(view) {
  for (const b of document.querySelectorAll('button.tab')) b.classList.toggle('active', b.dataset.view === view);
  for (const s of document.querySelectorAll('section.view')) s.classList.toggle('hidden', s.id !== `view-${view}`);
  if (view === 'people') loadPeople();
  if (view === 'photos') loadPhotos();
}

async function loadCounts() {
  try {
    const c = await api('/library');
    $('#counts').textContent = `${c.photos} photos · ${c.faces} faces · ${c.named} named of ${c.clusters} people`;
  } catch {}
}

const selected = new Set();
async function loadPeople() {
  const grid = $('#people');
  let data;
  try {
    data = await api('/library/clusters');
  } catch (e) {
    say(e.message, true);
    return;
  }
  grid.replaceChildren();
  selected.clear();
  $('#merge').disabled = true;
  $('#people-summary').textContent = `${data.clusters.length} people, ${data.unclustered} faces unclustered`;
  for (const c of data.clusters) grid.append(clusterCard(c));
  loadCounts();
}

function clusterCard(c) {
  const title = c.name ?? `Unnamed #${c.id}`;
  const name = el('div', { class: `name${c.name ? '' : ' unnamed'}` }, title);
  const card = el('div', { class: 'cluster', dataset: { id: String(c.id), name: c.name ?? '' } });
  const thumbs = el('div', { class: 'thumbs' }, ...c.sample.slice(0, 9).map((f) => keyedImg(`/library/faces/${f}/thumbnail?size=${c.sample[0] === f ? 160 : 80}`, { title: `face ${f}` })));
  const rename = () => {
    const input = el('input', { class: 'rename-input', value: c.name ?? '', placeholder: 'Name this person' });
    const save = async () => {
      const v = input.value.trim();
      if (!v || v === c.name) return loadPeople();
      try {
        const r = await api(`/library/clusters/${c.id}/name`, { method: 'POST', body: { name: v } });
        say(`Named ${r.name} (${r.faces} faces)`);
      } catch (e) {
        say(e.message, true);
      }
      loadPeople();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') save();
      if (e.key === 'Escape') loadPeople();
    });
    input.addEventListener('blur', save);
    name.replaceWith(input);
    input.focus();
    input.select();
  };
  const actions = el(
    'div',
    { class: 'actions' },
    el('button', { class: 'rename', onclick: rename }, c.name ? 'Rename' : 'Name'),
    el('button', { class: 'photos-of', onclick: () => loadPhotos(c) }, 'Photos'),
    el('button', {
      class: 'select',
      onclick: (e) => {
        if (selected.has(c.id)) selected.delete(c.id);
        else selected.add(c.id);
        card.classList.toggle('selected', selected.has(c.id));
        e.target.textContent = selected.has(c.id) ? 'Selected' : 'Select';
        $('#merge').disabled = selected.size < 2;
      },
    }, 'Select'),
    el('button', {
      class: 'remove',
      onclick: async () => {
        if (!confirm(`Remove ${title}? Its ${c.faces} faces will not be grouped again${c.name ? ' and the person leaves the gallery' : ''}.`)) return;
        try {
          await api(`/library/clusters/${c.id}`, { method: 'DELETE' });
          say(`Removed ${title}`);
        } catch (e) {
          say(e.message, true);
        }
        loadPeople();
      },
    }, 'Remove'),
  );
  card.append(thumbs, name, el('div', { class: 'muted' }, `${c.faces} faces in ${c.photos} photos`), actions);
  return card;
}

async function merge() {
  const ids = [...selected];
  // Into the named one when there is one, else the first selected.
  const cards = ids.map((id) => document.querySelector(`.cluster[data-id="${id}"]`));
  const named = cards.find((c) => c?.dataset.name);
  const into = named ? Number(named.dataset.id) : ids[0];
  try {
    const r = await api(`/library/clusters/${into}/merge`, { method: 'POST', body: { from: ids.filter((i) => i !== into) } });
    say(`Merged into ${r.name ?? `#${r.id}`} (${r.faces} faces)`);
  } catch (e) {
    say(e.message, true);
  }
  loadPeople();
}

async function recluster() {
  $('#recluster').disabled = true;
  try {
    const r = await api('/library/cluster', { method: 'POST', body: {} });
    say(`${r.clusters} people from ${r.faces} faces (${r.unclustered} unclustered) in ${r.ms.total} ms`);
    forgetImages();
  } catch (e) {
    say(e.message, true);
  }
  $('#recluster').disabled = false;
  loadPeople();
}

let photosCluster = null;
async function loadPhotos(cluster) {
  if (cluster !== undefined) {
    photosCluster = cluster;
    show('photos');
    return;
  }
  $('#photo-view').classList.add('hidden');
  $('#photos').classList.remove('hidden');
  const c = photosCluster;
  $('#photos-title').textContent = c ? `Photos of ${c.name ?? `unnamed #${c.id}`}` : 'All photos';
  $('#photos-all').classList.toggle('hidden', !c);
  let data;
  try {
    data = await api(`/library/photos?limit=500${c ? `&cluster=${c.id}` : ''}`);
  } catch (e) {
    say(e.message, true);
    return;
  }
  $('#photos').replaceChildren(
    ...data.photos.map((p) =>
      el('div', { class: 'photo-card', dataset: { id: String(p.id) }, onclick: () => openPhoto(p.id) }, keyedImg(`/library/photos/${p.id}/image?size=320`), el('div', { class: 'caption' }, `${p.name} · ${p.faces} face${p.faces === 1 ? '' : 's'}`)),
    ),
  );
}

/** Draws boxes (with labels) over an image of the given natural size, scaled as displayed. */
function drawBoxes(stage, img, width, faces) {
  for (const b of stage.querySelectorAll('.face-box')) b.remove();
  const place = () => {
    const s = img.clientWidth / width;
    for (const f of faces) {
      const box = el('div', { class: `face-box${f.label ? ' known' : ''}`, dataset: { name: f.label ?? '' } }, el('span', { class: 'label' }, f.label ?? f.fallback ?? 'unknown'));
      box.style.left = `${f.box.x * s}px`;
      box.style.top = `${f.box.y * s}px`;
      box.style.width = `${f.box.width * s}px`;
      box.style.height = `${f.box.height * s}px`;
      if (f.title) box.title = f.title;
      stage.append(box);
    }
  };
  if (img.complete && img.naturalWidth) place();
  else img.addEventListener('load', place, { once: true });
}

async function openPhoto(id) {
  let p;
  try {
    p = await api(`/library/photos/${id}`);
  } catch (e) {
    say(e.message, true);
    return;
  }
  $('#photos').classList.add('hidden');
  $('#photo-view').classList.remove('hidden');
  $('#photo-name').textContent = `${p.file} · ${p.width} x ${p.height}`;
  const stage = $('#photo-stage');
  const img = keyedImg(`/library/photos/${p.id}/image?size=1280`);
  stage.replaceChildren(img);
  drawBoxes(
    stage,
    img,
    p.width,
    p.faces.map((f) => ({ box: f.box, label: f.name, fallback: f.cluster ? `#${f.cluster}` : 'unclustered', title: `face ${f.id}, score ${f.score.toFixed(2)}` })),
  );
}

let uploaded = null;
async function identify() {
  const file = $('#identify-file').files[0];
  if (!file) return;
  uploaded = file;
  const stage = $('#identify-stage');
  const img = el('img', { alt: file.name, src: URL.createObjectURL(file) });
  stage.replaceChildren(img);
  $('#identify-faces').textContent = 'Looking for faces…';
  const form = new FormData();
  form.append('image', file);
  let r;
  try {
    r = await api('/library/identify', { method: 'POST', body: form });
  } catch (e) {
    $('#identify-faces').textContent = e.message;
    return;
  }
  drawBoxes(
    stage,
    img,
    r.width,
    r.faces.map((f) => ({ box: f.box, label: f.id, fallback: f.reason === 'ambiguous' ? 'ambiguous' : 'unknown', title: f.distance === null ? '' : `distance ${f.distance.toFixed(3)}${f.far !== undefined ? `, FAR ${f.far.toExponential(1)}` : ''}` })),
  );
  $('#identify-faces').replaceChildren(
    el('p', {}, r.faces.length ? `${r.faces.length} face${r.faces.length === 1 ? '' : 's'}: ${r.faces.map((f) => f.id ?? (f.reason === 'ambiguous' ? 'ambiguous' : 'unknown')).join(', ')}` : 'No face found.'),
  );
  $('#enrol-form').classList.toggle('hidden', !r.faces.length);
}

async function enrol(e) {
  e.preventDefault();
  if (!uploaded) return;
  const form = new FormData();
  form.append('id', $('#enrol-name').value.trim());
  form.append('append', 'true');
  form.append('image', uploaded);
  try {
    const p = await api('/enroll', { method: 'POST', body: form });
    say(`Enrolled ${p.id} (${p.embeddings} image${p.embeddings === 1 ? '' : 's'})`);
    identify();
  } catch (err) {
    say(err.message, true);
  }
}

async function verify() {
  const a = $('#verify-a').files[0];
  const b = $('#verify-b').files[0];
  if (!a || !b) return;
  const form = new FormData();
  form.append('a', a);
  form.append('b', b);
  $('#verify-result').textContent = 'Comparing…';
  try {
    const r = await api('/verify', { method: 'POST', body: form });
    const far = r.far !== undefined ? `; estimated false-accept rate at this distance ${r.far < 1e-4 ? '< 1e-4' : r.far.toExponential(1)}` : '';
    $('#verify-result').textContent = `${r.same ? 'Same person' : 'Different people'}: distance ${r.distance.toFixed(3)} (threshold ${r.threshold.toFixed(3)})${far}`;
    $('#verify-result').dataset.same = String(r.same);
  } catch (e) {
    $('#verify-result').textContent = e.message;
  }
}

function preview(input, target) {
  const f = input.files[0];
  $(target).replaceChildren(f ? el('img', { alt: f.name, src: URL.createObjectURL(f) }) : '');
  $('#verify-go').disabled = !($('#verify-a').files[0] && $('#verify-b').files[0]);
}

for (const b of document.querySelectorAll('button.tab')) b.addEventListener('click', () => show(b.dataset.view));
$('#key-button').addEventListener('click', async () => {
  if (await askKey()) show(document.querySelector('button.tab.active').dataset.view);
});
$('#merge').addEventListener('click', merge);
$('#recluster').addEventListener('click', recluster);
$('#photos-all').addEventListener('click', () => {
  photosCluster = null;
  loadPhotos();
});
$('#photo-back').addEventListener('click', () => loadPhotos());
$('#identify-file').addEventListener('change', identify);
$('#enrol-form').addEventListener('submit', enrol);
$('#verify-a').addEventListener('change', () => preview($('#verify-a'), '#verify-img-a'));
$('#verify-b').addEventListener('change', () => preview($('#verify-b'), '#verify-img-b'));
$('#verify-go').addEventListener('click', verify);
show('people');

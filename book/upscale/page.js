// The page "Upscale your own photo" (book/upscale.md): controls, the comparison slider and the
// download links. The work is done by worker.js in a Web Worker; nothing leaves the browser.
'use strict';
(function () {
  const root = document.getElementById('srlib-upscale');
  if (!root) return;
  const base = new URL('.', document.currentScript.src).href;  // _static/upscale/
  const $ = id => document.getElementById(id);
  const ui = {file: $('up-file'), example: $('up-example'), model: $('up-model'), scale: $('up-scale'),
              run: $('up-run'), progress: $('up-progress'), status: $('up-status'), result: $('up-result'),
              sr: $('up-sr'), line: $('up-line'), actual: $('up-actual'), bicubic: $('up-bicubic'), split: $('up-split'), top: $('up-top'),
              labelSr: $('up-label-sr'), downloadSr: $('up-download-sr'), downloadBicubic: $('up-download-bicubic')};
  const LIMIT = 16e6;  // output pixels: beyond this, the command line does it in bounded memory
  let manifest, worker, input = null, busy = false;

  const setState = (state, text) => { root.dataset.state = state; if (text !== undefined) ui.status.textContent = text; };
  const label = name => {  // e.g. "VDSR (vdsr): Set5 37.09 / 33.21 / 30.95 dB at x2 / x3 / x4"
    const e = manifest.models[name], psnr = e.set5_psnr || {};
    return `${{srcnn: 'SRCNN', vdsr: 'VDSR'}[e.kind] || 'SRResNet'} (${name})` + (Object.keys(psnr).length ?
      `: Set5 ${Object.values(psnr).join(' / ')} dB at x${Object.keys(psnr).join(' / x')}` : '');
  };

  function fillScales() {
    const e = manifest.models[ui.model.value];
    ui.scale.innerHTML = '';
    for (const s of e.scales) ui.scale.add(new Option(`x${s}`, String(s)));
  }

  async function pixels(blob) {  // the image's own 8-bit RGBA values, no colour management
    const bitmap = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    return {rgba: ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, width: bitmap.width, height: bitmap.height};
  }

  function draw(canvas, rgba, width, height) {
    canvas.width = width; canvas.height = height;
    canvas.getContext('2d').putImageData(new ImageData(rgba, width, height), 0, 0);
  }

  function link(a, canvas, name) {
    canvas.toBlob(blob => {
      if (a.href) URL.revokeObjectURL(a.href);
      a.href = URL.createObjectURL(blob);
      a.download = name;
    }, 'image/png');
  }

  function start() {
    if (!input || busy) return;
    const name = ui.model.value, entry = manifest.models[name], scale = Number(ui.scale.value);
    const factor = entry.input === 'rgb' ? entry.factor : scale;
    if (input.width * factor * input.height * factor > LIMIT) {
      setState('error', `${input.width}x${input.height} at x${factor} gives more than ${LIMIT / 1e6} million pixels: ` +
        'too large for this page; `srlib upscale` does any size in bounded memory.');
      return;
    }
    if (Math.min(input.width, input.height) < 4) {
      setState('error', `${input.width}x${input.height} is too small to upscale.`);
      return;
    }
    busy = true;
    ui.run.disabled = true;
    ui.progress.value = 0;
    setState('running', `${name} x${factor} on ${input.width}x${input.height} ...`);
    worker.postMessage({type: 'upscale', rgba: input.rgba, width: input.width, height: input.height, model: name,
                        scale, tile: entry.input === 'rgb' ? 64 : 192});
  }

  function done(msg) {
    busy = false;
    ui.run.disabled = false;
    const name = ui.model.value;
    draw(ui.bicubic, msg.bicubic, msg.width, msg.height);
    draw(ui.sr, msg.sr, msg.width, msg.height);
    ui.labelSr.textContent = name;
    ui.result.hidden = false;
    const stem = (input.name || 'image').replace(/\.[^.]*$/, '');
    link(ui.downloadSr, ui.sr, `${stem}_${name}_x${ui.scale.value}.png`);
    link(ui.downloadBicubic, ui.bicubic, `${stem}_bicubic_x${ui.scale.value}.png`);
    const engine = msg.backend === 'webgpu' ? 'WebGPU' :
      `WebAssembly, ${msg.workers} worker${msg.workers > 1 ? 's' : ''} of one thread`;
    root.dataset.networkSeconds = msg.network_seconds.toFixed(3);
    root.dataset.seconds = msg.seconds.toFixed(3);
    root.dataset.workers = msg.workers;
    setState('done', `${input.width}x${input.height} -> ${msg.width}x${msg.height}: the network took ` +
      `${msg.network_seconds.toFixed(1)} s on this machine (${engine}, ${msg.tiles} tile${msg.tiles > 1 ? 's' : ''}), ` +
      `${msg.seconds.toFixed(1)} s in all.` + (msg.grey ? ' A grey image: the network ran on it directly.' : ''));
  }

  async function choose(blob, name) {
    try {
      input = Object.assign(await pixels(blob), {name});
    } catch (e) {
      setState('error', `${name}: not an image this browser can read (${e.message || e})`);
      return;
    }
    start();
  }

  ui.split.addEventListener('input', () => {
    ui.top.style.clipPath = `inset(0 0 0 ${ui.split.value}%)`;
    ui.line.style.left = `${ui.split.value}%`;
  });
  ui.actual.addEventListener('change', () => ui.sr.closest('.up-compare').classList.toggle('actual', ui.actual.checked));
  ui.model.addEventListener('change', fillScales);
  ui.run.addEventListener('click', start);
  ui.file.addEventListener('change', () => { if (ui.file.files.length) choose(ui.file.files[0], ui.file.files[0].name); });
  ui.example.addEventListener('change', async () => {
    if (!ui.example.value) return;
    const r = await fetch(new URL(ui.example.value, base));
    choose(await r.blob(), ui.example.value.split('/').pop());
  });

  (async () => {
    setState('loading', 'Loading the networks and ONNX Runtime ...');
    try {
      manifest = await (await fetch(new URL('manifest.json', base))).json();
      const runtime = await (await fetch(new URL('runtime.json', base))).json();
      for (const name of Object.keys(manifest.models)) ui.model.add(new Option(label(name), name));
      for (const e of manifest.examples) {
        ui.example.add(new Option(`${e.name}, ${e.width}x${e.height} (reduced x${e.reduced_by} by bicubic)`, e.file));
      }
      ui.model.value = 'vdsr' in manifest.models ? 'vdsr' : ui.model.options[0].value;
      fillScales();
      worker = new Worker(new URL('worker.js', base));
      worker.onmessage = event => {
        const msg = event.data;
        if (msg.type === 'ready') {
          root.dataset.backend = msg.backend;
          setState('ready', `Ready: ONNX Runtime Web ${runtime.version} (${msg.backend === 'webgpu' ? 'WebGPU' : 'WebAssembly'}). ` +
            'Choose an image.');
        } else if (msg.type === 'progress') {
          ui.progress.value = msg.done / msg.total;
          ui.status.textContent = `tile ${msg.done} of ${msg.total} ...`;
        } else if (msg.type === 'done') {
          done(msg);
        } else if (msg.type === 'error') {
          busy = false;
          ui.run.disabled = false;
          setState('error', `Error: ${msg.message}`);
        }
      };
      worker.postMessage({type: 'init', base, manifest, runtime: runtime.base});
    } catch (e) {
      setState('error', `The page could not load its files (${e.message || e}). ` +
        'Opened from a file:// address? Serve the book, e.g. `python -m http.server -d _build/html`.');
    }
  })();
})();

// The computation of the page "Upscale your own photo" (book/upscale.md), in a Web Worker so
// that the page stays responsive. It does what `srlib upscale` does (srlib/inference.py,
// upscale_photo), so that the page and the command line give the same image:
//  - Y networks (SRCNN, VDSR): RGB -> YCbCr (MATLAB's rgb2ycbcr), the three channels upscaled
//    by MATLAB's bicubic, the network on Y, back to RGB; a grey image: the network on it.
//  - RGB networks (SRResNet): the network on the LR RGB image itself.
//  - alpha: MATLAB's bicubic. 8 bits out, rounded as MATLAB's uint8 does.
// The network runs in tiles that overlap by its receptive radius (the manifest's "margin"),
// so the tiles do not show: every output pixel saw what it would have seen in the whole image.
// On WebAssembly, ONNX Runtime runs one thread per worker (its threads need a cross-origin
// isolated site, which GitHub Pages is not), so this worker starts helpers, more workers of this
// script that run the tiles, one per CPU core (up to MAX_WORKERS), and hands the tiles out.
'use strict';

const MAX_WORKERS = 4;
const helpers = [];  // workers that run tiles for this one: {worker, pending: Map(id -> resolve)}
let nextId = 0;

// `ort`: onnxruntime-web, a global of the script that init() imports.
let backend = 'wasm';
let manifest = null;
let base = '';
let ready = null;  // init's promise: an upscale that arrives first waits for it
const sessions = {};

async function init(msg) {
  base = msg.base;
  manifest = msg.manifest;
  let gpu = false;
  if (self.navigator && navigator.gpu) {
    try { gpu = !!(await navigator.gpu.requestAdapter()); } catch (e) { gpu = false; }
  }
  const runtime = new URL(msg.runtime, base).href;
  importScripts(runtime + (gpu ? 'ort.webgpu.min.js' : 'ort.wasm.min.js'));

  ort.env.wasm.wasmPaths = runtime;
  ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which GitHub Pages does not give
  backend = gpu ? 'webgpu' : 'wasm';
  if (msg.helper || gpu) return;
  const cores = navigator.hardwareConcurrency || 1;
  if (cores < 2) return;  // one core: this worker runs the tiles itself
  await Promise.all(Array.from({length: Math.min(MAX_WORKERS, cores)}, () => new Promise(resolve => {
    const helper = {worker: new Worker(self.location.href), pending: new Map()};
    helper.worker.onmessage = event => {
      const m = event.data;
      if (m.type === 'ready') { helpers.push(helper); resolve(); }
      else if (helper.pending.has(m.id)) { helper.pending.get(m.id)(m); helper.pending.delete(m.id); }
    };
    helper.worker.onerror = () => resolve();  // no helper: this worker runs the tiles alone
    helper.worker.postMessage({...msg, helper: true});
  })));
}

async function call(helper, msg, transfer = []) {  // a helper's reply to msg
  const id = nextId++;
  const reply = await new Promise(resolve => {
    helper.pending.set(id, resolve);
    helper.worker.postMessage({...msg, id}, transfer);
  });
  if (reply.type === 'error') throw new Error(reply.message);
  return reply;
}

async function runTile(model, data, dims) {  // the network on one tile, here: its output as a Float32Array
  const net = await session(model);
  const result = await net.run({input: new ort.Tensor('float32', data, dims)});
  const y = (await result.output.getData()).slice();
  result.output.dispose();
  return y;
}

async function sha256(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), b => b.toString(16).padStart(2, '0')).join('');
}

async function session(name) {
  if (!sessions[name]) {
    const entry = manifest.models[name];
    const response = await fetch(new URL(entry.file, base));
    if (!response.ok) throw new Error(`${entry.file}: HTTP ${response.status}`);
    const bytes = await response.arrayBuffer();
    if (await sha256(bytes) !== entry.sha256) throw new Error(`${entry.file}: checksum mismatch`);
    const providers = backend === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'];
    sessions[name] = await ort.InferenceSession.create(bytes, {executionProviders: providers});
  }
  return sessions[name];
}

// ----- MATLAB's bicubic (srlib/data/resize.py): Keys' cubic, a = -0.5, mirrored borders ---------------
function cubic(x) {
  const a = -0.5, ax = Math.abs(x), ax2 = ax * ax, ax3 = ax2 * ax;
  if (ax <= 1) return (a + 2) * ax3 - (a + 3) * ax2 + 1;
  if (ax <= 2) return a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a;
  return 0;
}

const TAPS = 6;  // ceil(kernel width 4) + 2, as imresize takes them

function taps(inLen, outLen) {  // upscaling only (no antialiasing): the weights of each output pixel
  const scale = outLen / inLen, idx = new Int32Array(outLen * TAPS), w = new Float64Array(outLen * TAPS);
  for (let i = 0; i < outLen; i++) {
    const u = (i + 1) / scale + 0.5 * (1 - 1 / scale);  // input coordinate of output pixel i (1-based)
    const left = Math.floor(u - 2);
    let sum = 0;
    for (let k = 0; k < TAPS; k++) {
      const j = left + k, v = cubic(u - j);
      const m = (((j - 1) % (2 * inLen)) + 2 * inLen) % (2 * inLen);  // symmetric padding
      idx[i * TAPS + k] = m < inLen ? m : 2 * inLen - 1 - m;
      w[i * TAPS + k] = v;
      sum += v;
    }
    for (let k = 0; k < TAPS; k++) w[i * TAPS + k] /= sum;
  }
  return {idx, w};
}

function resize(plane, h, w, oh, ow) {  // Float64Array h x w -> oh x ow: rows first, then columns
  const rows = taps(h, oh), cols = taps(w, ow);
  const tmp = new Float64Array(oh * w), out = new Float64Array(oh * ow);
  for (let i = 0; i < oh; i++) {
    for (let k = 0; k < TAPS; k++) {
      const wt = rows.w[i * TAPS + k], src = rows.idx[i * TAPS + k] * w, dst = i * w;
      for (let x = 0; x < w; x++) tmp[dst + x] += wt * plane[src + x];
    }
  }
  for (let i = 0; i < oh; i++) {
    const row = i * w;
    for (let j = 0; j < ow; j++) {
      let s = 0;
      for (let k = 0; k < TAPS; k++) s += cols.w[j * TAPS + k] * tmp[row + cols.idx[j * TAPS + k]];
      out[i * ow + j] = s;
    }
  }
  return out;
}

// ----- colour (srlib/data/image.py): MATLAB's rgb2ycbcr and ycbcr2rgb on [0, 1] values -----------------
function inverse3(m) {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  return [[(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
          [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
          [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det]];
}

const quantize = x => Math.min(255, Math.max(0, Math.floor(x * 255 + 0.5)));  // MATLAB's uint8 of 0-1 values

// ----- the network in tiles -----------------------------------------------------------------------------
async function runTiled(model, planes, h, w, factor, margin, tile, progress) {
  const c = planes.length, oh = h * factor, ow = w * factor;
  const out = planes.map(() => new Float32Array(oh * ow));
  const spans = n => { const s = []; for (let a = 0; a < n; a += tile) s.push([a, Math.min(a + tile, n)]); return s; };
  const tiles = [];
  for (const rows of spans(h)) for (const cols of spans(w)) tiles.push([...rows, ...cols]);
  let next = 0, done = 0;
  const t0 = performance.now();
  const runner = async helper => {  // takes tiles until none is left; here, or in a helper worker
    while (next < tiles.length) {
      const [a0, a1, b0, b1] = tiles[next++];
      const c0 = Math.max(a0 - margin, 0), c1 = Math.min(a1 + margin, h);
      const d0 = Math.max(b0 - margin, 0), d1 = Math.min(b1 + margin, w);
      const th = c1 - c0, tw = d1 - d0, data = new Float32Array(c * th * tw);
      for (let ch = 0; ch < c; ch++) {
        for (let r = 0; r < th; r++) data.set(planes[ch].subarray((c0 + r) * w + d0, (c0 + r) * w + d1), (ch * th + r) * tw);
      }
      const dims = [1, c, th, tw];
      const y = helper ? (await call(helper, {type: 'tile', model, data, dims}, [data.buffer])).output
                 : await runTile(model, data, dims);
      const yh = th * factor, yw = tw * factor;
      for (let ch = 0; ch < c; ch++) {
        for (let r = (a0 - c0) * factor; r < (a1 - c0) * factor; r++) {
          const src = (ch * yh + r) * yw, dst = (c0 * factor + r) * ow;
          out[ch].set(y.subarray(src + (b0 - d0) * factor, src + (b1 - d0) * factor), dst + b0 * factor);
        }
      }
      progress(++done, tiles.length);
    }
  };
  // With helpers, this worker only hands out tiles: ONNX Runtime's WebAssembly keeps a worker busy
  // until a run ends, and the helpers' finished tiles would wait for it.
  await Promise.all(helpers.length ? helpers.map(runner) : [runner(null)]);
  return {out, seconds: (performance.now() - t0) / 1000, tiles: tiles.length, workers: helpers.length || 1};
}

async function upscale(msg) {
  const {rgba, width: w, height: h, model, scale, tile} = msg;
  const entry = manifest.models[model];
  // The network loaded (and checked) here and in every helper before the clock starts.
  await Promise.all([session(model), ...helpers.map(helper => call(helper, {type: 'load', model}))]);
  const n = w * h;
  let grey = true, opaque = true;
  for (let p = 0; p < n; p++) {
    const r = rgba[4 * p], g = rgba[4 * p + 1], b = rgba[4 * p + 2];
    if (r !== g || g !== b) grey = false;
    if (rgba[4 * p + 3] !== 255) opaque = false;
  }
  const plane = k => { const a = new Float64Array(n); for (let p = 0; p < n; p++) a[p] = rgba[4 * p + k] / 255; return a; };
  const rgbIn = grey ? [plane(0)] : [plane(0), plane(1), plane(2)];
  const progress = (done, total) => self.postMessage({type: 'progress', done, total});
  const t0 = performance.now();
  let oh, ow, srRGB, bicRGB, net_;  // planes of 0-1 values, output size
  if (entry.input === 'rgb') {  // SRResNet: the network upscales the LR RGB image itself
    const f = entry.factor;
    oh = h * f; ow = w * f;
    const inputs = (grey ? [rgbIn[0], rgbIn[0], rgbIn[0]] : rgbIn).map(p => Float32Array.from(p));
    net_ = await runTiled(model, inputs, h, w, f, entry.margin, tile, progress);
    srRGB = grey ? [net_.out[0].map((v, p) => (v + net_.out[1][p] + net_.out[2][p]) / 3)] : net_.out;
    bicRGB = rgbIn.map(p => resize(p, h, w, oh, ow));
  } else {  // SRCNN, VDSR: the network on the bicubic-upscaled Y channel
    oh = Math.ceil(scale * h - 1e-9); ow = Math.ceil(scale * w - 1e-9);
    const M = manifest.ycbcr.matrix, off = manifest.ycbcr.offset, inv = inverse3(M);
    let ycc = rgbIn;
    if (!grey) {
      ycc = [0, 1, 2].map(k => { const a = new Float64Array(n);
        for (let p = 0; p < n; p++) a[p] = (M[k][0] * rgbIn[0][p] + M[k][1] * rgbIn[1][p] + M[k][2] * rgbIn[2][p] + off[k]) / 255;
        return a; });
    }
    const up = ycc.map(p => resize(p, h, w, oh, ow));
    net_ = await runTiled(model, [Float32Array.from(up[0])], oh, ow, 1, entry.margin, tile, progress);
    const toRGB = y => {
      if (grey) return [y];
      const o = [new Float64Array(oh * ow), new Float64Array(oh * ow), new Float64Array(oh * ow)];
      for (let p = 0; p < oh * ow; p++) {
        const v = [y[p] * 255 - off[0], up[1][p] * 255 - off[1], up[2][p] * 255 - off[2]];
        for (let k = 0; k < 3; k++) o[k][p] = inv[k][0] * v[0] + inv[k][1] * v[1] + inv[k][2] * v[2];
      }
      return o;
    };
    srRGB = toRGB(net_.out[0]);
    bicRGB = toRGB(up[0]);
  }
  const alpha = opaque ? null : resize(plane(3), h, w, oh, ow);
  const pack = planes => {
    const o = new Uint8ClampedArray(oh * ow * 4);
    for (let p = 0; p < oh * ow; p++) {
      for (let k = 0; k < 3; k++) o[4 * p + k] = quantize(planes[planes.length === 1 ? 0 : k][p]);
      o[4 * p + 3] = alpha ? quantize(alpha[p]) : 255;
    }
    return o;
  };
  const sr = pack(srRGB), bicubic = pack(bicRGB);
  const seconds = (performance.now() - t0) / 1000;
  self.postMessage({type: 'done', width: ow, height: oh, sr, bicubic, network_seconds: net_.seconds, seconds,
                    tiles: net_.tiles, workers: net_.workers, backend, grey}, [sr.buffer, bicubic.buffer]);
}

self.onmessage = async event => {
  const msg = event.data;
  try {
    if (msg.type === 'init') {
      ready = init(msg);
      await ready;
      self.postMessage({type: 'ready', backend});
    } else if (msg.type === 'upscale') {
      await ready;
      await upscale(msg);
    } else if (msg.type === 'load') {  // a helper's work: load a network, run a tile
      await ready;
      await session(msg.model);
      self.postMessage({type: 'loaded', id: msg.id});
    } else if (msg.type === 'tile') {
      await ready;
      const output = await runTile(msg.model, msg.data, msg.dims);
      self.postMessage({type: 'tile', id: msg.id, output}, [output.buffer]);
    }
  } catch (e) {
    self.postMessage({type: 'error', id: msg.id, message: String(e && e.message ? e.message : e)});
  }
};

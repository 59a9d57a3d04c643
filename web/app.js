// mattecam in the browser: camera -> Robust Video Matting (TF.js) -> composite on a canvas.
//
// Everything runs in this page; no frame is sent anywhere. The network keeps its recurrent state
// from frame to frame, and the downsample ratio is picked from the frame size as the desktop app
// does. URL parameters: model=URL of model.json (default model/model.json), backend=webgl|wasm|cpu,
// ratio=auto|auto-full|NUMBER, bg=blur|color|none|IMAGE URL, record=N (keep the first N frames'
// input and matte in window.mattecam.records, for tests).
const tf = window.tf;
const params = new URLSearchParams(window.location.search);
const OUTPUTS = ['fgr', 'pha', 'r1o', 'r2o', 'r3o', 'r4o'];
const WASM_PATH = 'node_modules/@tensorflow/tfjs-backend-wasm/dist/';
// The desktop app's rule (app/matting/engine.py, auto_ratio): RVM's table of ratios.
const FULL_SIZE_LONG_SIDE = 512;
const PORTRAIT_LONG_SIDE = 480;
const FULL_BODY_LONG_SIDE = 768;

const video = document.getElementById('camera');
const canvas = document.getElementById('output');
const message = document.getElementById('message');
const stats = document.getElementById('stats');
const controls = {
  background: document.getElementById('background'),
  color: document.getElementById('color'),
  ratio: document.getElementById('ratio'),
  mirror: document.getElementById('mirror'),
};

const state = {
  backend: null,
  frames: 0,
  ratio: null,
  error: null,
  records: [],
  recordLimit: Number(params.get('record') || 0),
};
window.mattecam = state;

/** RVM's downsample ratio for a frame size: full size up to 512 px, else a long side of 480/768. */
export function autoRatio(height, width, fullBody = false) {
  const longSide = Math.max(height, width);
  if (longSide <= FULL_SIZE_LONG_SIDE) return 1;
  return Math.min(1, (fullBody ? FULL_BODY_LONG_SIDE : PORTRAIT_LONG_SIDE) / longSide);
}

function chosenRatio(height, width) {
  const value = controls.ratio.value;
  if (value === 'auto' || value === 'auto-full') return autoRatio(height, width, value === 'auto-full');
  return Number(value);
}

function show(text) {
  message.textContent = text;
}

async function startBackend() {
  const wanted = params.get('backend');
  tf.wasm.setWasmPaths(WASM_PATH);
  for (const name of wanted ? [wanted] : ['webgl', 'wasm', 'cpu']) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch (e) {
      console.warn(`TF.js backend ${name} did not start:`, e);
    }
  }
  throw new Error('No TensorFlow.js backend could start here (neither WebGL nor WebAssembly).');
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('This browser gives the page no camera: open it as http://127.0.0.1 or over https.');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (e) {
    if (e.name === 'NotAllowedError') throw new Error('Camera access was refused: allow it for this page and reload.');
    if (e.name === 'NotFoundError') throw new Error('No camera was found: connect one and reload.');
    throw new Error(`The camera did not open: ${e.message}`);
  }
  video.srcObject = stream;
  await video.play();
}

// --- backgrounds ---------------------------------------------------------------------------------

const images = new Map(); // url -> HTMLImageElement (loaded)
let cachedBackground = { key: null, tensor: null };

function loadImage(url) {
  if (!images.has(url)) {
    const img = new Image();
    img.src = url;
    images.set(url, img);
  }
  const img = images.get(url);
  return img.complete && img.naturalWidth > 0 ? img : null;
}

/** The image as a [1, h, w, 3] float tensor covering the frame (cropped, not stretched). */
function coverImage(img, height, width) {
  return tf.tidy(() => {
    const pixels = tf.browser.fromPixels(img).toFloat().div(255).expandDims(0);
    const [ih, iw] = [img.naturalHeight, img.naturalWidth];
    const scale = Math.max(height / ih, width / iw);
    const ch = height / scale / ih;
    const cw = width / scale / iw;
    const box = [[(1 - ch) / 2, (1 - cw) / 2, (1 + ch) / 2, (1 + cw) / 2]];
    return tf.image.cropAndResize(pixels, box, [0], [height, width]);
  });
}

/** A soft blur of the frame: box averages at a coarse scale, smoothed, brought back bilinearly. */
function blurred(src, height, width) {
  const step = Math.max(2, Math.round(Math.max(height, width) / 90));
  return tf.tidy(() => {
    let small = tf.avgPool(src, step, step, 'same');
    small = tf.avgPool(tf.avgPool(small, 3, 1, 'same'), 3, 1, 'same');
    return tf.image.resizeBilinear(small, [height, width], false, true);
  });
}

function background(src, height, width) {
  const choice = controls.background.value;
  if (choice === 'blur') return blurred(src, height, width);
  if (choice === 'none') return src.clone();
  if (choice === 'color') {
    const hex = controls.color.value;
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
    return tf.tensor4d(rgb, [1, 1, 1, 3]);
  }
  const key = `${choice}@${width}x${height}`;
  if (cachedBackground.key !== key) {
    const img = loadImage(choice);
    if (!img) return blurred(src, height, width); // until the image has loaded
    tf.dispose(cachedBackground.tensor);
    cachedBackground = { key, tensor: tf.keep(coverImage(img, height, width)) };
  }
  return cachedBackground.tensor.clone();
}

// --- the loop ------------------------------------------------------------------------------------

function toBase64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

async function run(model) {
  let rec = null;
  let recKey = null;
  let counted = 0;
  let countStart = performance.now();
  let fps = 0;
  let lastMs = 0;
  for (;;) {
    const height = video.videoHeight;
    const width = video.videoWidth;
    if (!height || !width) {
      await tf.nextFrame();
      continue;
    }
    const ratio = chosenRatio(height, width);
    const key = `${width}x${height}@${ratio}`;
    if (key !== recKey) {
      // A new size or ratio changes the state's shape: start again from zeros.
      tf.dispose(rec);
      rec = [0, 0, 0, 0].map(() => tf.scalar(0));
      recKey = key;
      canvas.width = width;
      canvas.height = height;
    }
    const start = performance.now();
    const pixels = tf.browser.fromPixels(video);
    const src = tf.tidy(() => pixels.toFloat().div(255).expandDims(0));
    const ratioTensor = tf.scalar(ratio);
    const inputs = { src, r1i: rec[0], r2i: rec[1], r3i: rec[2], r4i: rec[3], downsample_ratio: ratioTensor };
    const [fgr, pha, ...next] = model.execute(inputs, OUTPUTS);
    tf.dispose(rec);
    rec = next;
    const record = state.records.length < state.recordLimit ? { width, height, ratio } : null;
    if (record) {
      const alpha = await pha.data();
      record.src = toBase64(Uint8Array.from(await pixels.data()));
      record.pha = toBase64(new Uint8Array(alpha.buffer, alpha.byteOffset, alpha.byteLength));
    }
    const out = tf.tidy(() => {
      const bg = background(src, height, width);
      return fgr.mul(pha).add(bg.mul(tf.scalar(1).sub(pha))).squeeze([0]).clipByValue(0, 1);
    });
    await tf.browser.toPixels(out, canvas);
    if (record) {
      record.shown = toBase64(canvas.getContext('2d').getImageData(0, 0, width, height).data);
      state.records.push(record);
    }
    tf.dispose([pixels, src, ratioTensor, fgr, pha, out]);
    lastMs = performance.now() - start;
    state.frames += 1;
    state.ratio = ratio;
    counted += 1;
    const elapsed = performance.now() - countStart;
    if (elapsed >= 1000) {
      fps = (counted * 1000) / elapsed;
      counted = 0;
      countStart = performance.now();
    }
    canvas.classList.toggle('mirror', controls.mirror.checked);
    stats.textContent = `${fps.toFixed(1)} fps · ${lastMs.toFixed(0)} ms a frame · ${width}x${height}`
      + ` · ratio ${Number(ratio.toFixed(3))} · ${state.backend}`;
    if (state.frames === 1) show('');
    await tf.nextFrame();
  }
}

async function main() {
  // Picking a colour means wanting it as the background.
  controls.color.addEventListener('input', () => {
    controls.background.value = 'color';
  });
  for (const [name, select] of [['ratio', controls.ratio], ['bg', controls.background]]) {
    const value = params.get(name);
    if (value === null) continue;
    if (![...select.options].some((o) => o.value === value)) select.add(new Option(value, value));
    select.value = value;
  }
  try {
    state.backend = await startBackend();
    show(`Loading the network (${state.backend})…`);
    const model = await tf.loadGraphModel(params.get('model') || 'model/model.json');
    show('Opening the camera…');
    await openCamera();
    show('Starting…');
    await run(model);
  } catch (e) {
    state.error = e.message;
    show(e.message);
    throw e;
  }
}

main();

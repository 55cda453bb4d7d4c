// s2t serve page: sends the mic (or a file) over WebRTC, shows the avatar, its stats, and measures g2g.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { pc: null, session: null, dc: null, stream: null, ctx: null, level: [], frames: [],
  sampling: false, artDataUrl: null };
// What automated tests read (window.__s2t): connection state, the last stats, the g2g result.
window.__s2t = { state: "idle", stats: null, statsCount: 0, g2g: null, error: null, framesSeen: 0,
  statsLog: [] };

function headers(extra = {}) {
  const h = { "Content-Type": "application/json", ...extra };
  const tok = $("token").value.trim();
  if (tok) h.Authorization = "Bearer " + tok;
  return h;
}

function say(text, ok = false) {
  $("message").textContent = text;
  $("message").className = ok ? "message ok" : "message";
}

function fileToDataUrl(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) throw new Error((data && data.error) || `HTTP ${r.status}`);
  if (data === null) throw new Error(`HTTP ${r.status} with an unreadable reply from ${path}`);
  return data;
}

// Mic level in dB per 128-sample block, stamped on the page's performance clock (for g2g).
const LEVEL_WORKLET = `
class Level extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) { let s = 0; for (let i = 0; i < ch.length; i++) s += ch[i] * ch[i];
      const rms = Math.sqrt(s / ch.length); this.port.postMessage(rms > 0 ? 20 * Math.log10(rms) : -100); }
    return true;
  }
}
registerProcessor("s2t-level", Level);`;

async function sourceStream() {
  const ctx = new AudioContext();
  state.ctx = ctx;
  let stream;
  if ($("source").value === "file") {
    const f = $("audio-file").files[0];
    if (!f) throw new Error("choose an audio file first");
    const buf = await ctx.decodeAudioData(await f.arrayBuffer());
    const src = ctx.createBufferSource();
    src.buffer = buf; src.loop = true;
    const dest = ctx.createMediaStreamDestination();
    src.connect(dest); src.start();
    stream = dest.stream;
  } else {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  }
  const url = URL.createObjectURL(new Blob([LEVEL_WORKLET], { type: "text/javascript" }));
  await ctx.audioWorklet.addModule(url);
  const node = new AudioWorkletNode(ctx, "s2t-level");
  node.port.onmessage = (e) => {
    if (state.sampling) state.level.push([performance.now(), Math.max(-100, e.data)]);
  };
  ctx.createMediaStreamSource(stream).connect(node);
  await ctx.resume();
  return stream;
}

function showStats(s) {
  window.__s2t.stats = s;
  window.__s2t.statsCount += 1;
  window.__s2t.statsLog.push({ t: performance.now(), sampling: state.sampling, s });
  if (window.__s2t.statsLog.length > 240) window.__s2t.statsLog.shift();
  const f = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(0));
  // the last second's latency; the session's when no fresh frame came in the last second
  const e = s.e2e_ms.p50 === null && s.e2e_ms_session ? s.e2e_ms_session : s.e2e_ms;
  let text = `e2e p50 ${f(e.p50)} p95 ${f(e.p95)} p99 ${f(e.p99)} ms\n` +
    `fps ${Number(s.fps).toFixed(1)}  ladder ${s.level} (${s.level_name})\n` +
    `dropped ${s.dropped}  repeated ${s.repeated}`;
  if (s.g2g && s.g2g.p50 !== null) text += `\ng2g p50 ${f(s.g2g.p50)} ms (${s.g2g.paired} onsets)`;
  $("overlay").textContent = text;
}

function waitIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
    pc.addEventListener("icegatheringstatechange", check);
  });
}

function watchFrames() {
  const video = $("video");
  const canvas = document.createElement("canvas");
  const g = canvas.getContext("2d");
  const onFrame = (now, meta) => {
    window.__s2t.framesSeen += 1;
    if (state.sampling) {
      canvas.width = meta.width; canvas.height = meta.height;
      g.drawImage(video, 0, 0);
      const jpeg = canvas.toDataURL("image/jpeg", 0.85).split(",")[1];
      state.frames.push({ t: meta.expectedDisplayTime || now, jpeg });
    }
    if (state.pc) video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

async function start() {
  $("start").disabled = true;
  say("connecting…", true);
  window.__s2t.state = "connecting";
  try {
    state.stream = await sourceStream();
    const pc = new RTCPeerConnection();
    state.pc = pc;
    pc.addTransceiver(state.stream.getAudioTracks()[0], { direction: "sendrecv" });
    pc.addTransceiver("video", { direction: "recvonly" });
    const dc = pc.createDataChannel("stats");
    dc.onmessage = (e) => showStats(JSON.parse(e.data));
    state.dc = dc;
    const remote = new MediaStream();
    pc.ontrack = (e) => { remote.addTrack(e.track); $("video").srcObject = remote; };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") { window.__s2t.state = "connected"; say("connected", true); }
      if (pc.connectionState === "failed") { say("connection failed"); stop(); }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitIce(pc);
    const body = { sdp: pc.localDescription.sdp, type: pc.localDescription.type,
      emotion: $("emotion").value.trim() || undefined, budget_ms: Number($("budget").value) || undefined };
    const pf = $("portrait").files[0];
    if (pf) body.portrait = await fileToDataUrl(pf);
    const answer = await post("/offer", body);
    state.session = answer.session;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    watchFrames();
    for (const id of ["stop", "interrupt", "emotion-set", "g2g"]) $(id).disabled = false;
  } catch (e) {
    window.__s2t.state = "error"; window.__s2t.error = String(e.message || e);
    say(String(e.message || e));
    await stop();
  }
}

async function stop() {
  const sid = state.session;
  state.session = null;
  if (state.pc) { state.pc.close(); state.pc = null; }
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  if (state.ctx) { state.ctx.close(); state.ctx = null; }
  if (sid) fetch(`/session/${sid}/close`, { method: "POST" }).catch(() => {});
  $("start").disabled = false;
  for (const id of ["stop", "interrupt", "emotion-set", "g2g"]) $(id).disabled = true;
  $("overlay").textContent = "not connected";
  if (window.__s2t.state !== "error") window.__s2t.state = "stopped";
}

async function control(op, body) {
  if (!state.session) { say("start a session first"); return null; }
  try {
    const r = await post(`/session/${state.session}/${op}`, body);
    say(r.note || `${op}: ok`, !r.note);
    return r;
  } catch (e) { say(`${op}: ${e.message}`); return null; }
}

async function measureG2G(seconds) {
  state.level = []; state.frames = []; state.sampling = true;
  $("g2g-out").textContent = `sampling ${seconds} s…`;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  state.sampling = false;
  const body = { audio: { t: state.level.map((x) => x[0]), db: state.level.map((x) => x[1]) }, frames: state.frames };
  $("g2g-out").textContent = `measuring ${state.frames.length} frames…`;
  try {
    const r = await post(`/session/${state.session}/g2g`, body);
    window.__s2t.g2g = r;
    const s = r.summary;
    if (!s) throw new Error(r.error || "the server sent no glass-to-glass summary");
    $("g2g-out").textContent = `glass-to-glass p50 ${s.p50 === null ? "–" : s.p50.toFixed(0)} ms over ${s.paired} onsets ` +
      `(min ${s.min_ms}, max ${s.max_ms}); ${r.faces}/${r.frames} frames with a face`;
  } catch (e) {
    window.__s2t.g2g = { error: e.message };
    $("g2g-out").textContent = e.message;
  }
}

$("source").onchange = () => { $("file-row").hidden = $("source").value !== "file"; };
$("strength").oninput = () => { $("strength-out").textContent = Number($("strength").value).toFixed(2); };
$("start").onclick = start;
$("stop").onclick = stop;
$("interrupt").onclick = () => control("interrupt", {});
$("emotion-set").onclick = () => control("emotion", { text: $("emotion").value });
$("portrait").onchange = async () => {
  const f = $("portrait").files[0];
  if (f && state.session) control("portrait", { image: await fileToDataUrl(f) });
};
$("art").onchange = async () => {
  const f = $("art").files[0];
  state.artDataUrl = f ? await fileToDataUrl(f) : null;
  control("art_style", { image: state.artDataUrl, strength: Number($("strength").value) });
};
$("strength").onchange = () => {
  if (state.artDataUrl) control("art_style", { image: state.artDataUrl, strength: Number($("strength").value) });
};
$("style-clip").onchange = async () => {
  const f = $("style-clip").files[0];
  if (!f || !state.session) { if (f) say("start a session first"); return; }
  const video = !f.name.toLowerCase().endsWith(".npy");
  // a video is face-tracked and fitted on the server: seconds, while the stream goes on with the old style
  if (video) say(`fitting the talking style from ${f.name} (a few seconds; the stream goes on meanwhile)…`, true);
  const r = await control("style_reference", { clip: await fileToDataUrl(f) });
  if (r && !r.note) say(`talking style taken from ${f.name}`, true);
};
$("g2g").onclick = () => measureG2G(8);
window.addEventListener("pagehide", () => {
  if (state.session) navigator.sendBeacon(`/session/${state.session}/close`);
});

// ?autostart=1 connects at once; &g2g=SECONDS then measures glass-to-glass once frames flow.
const params = new URLSearchParams(location.search);
if (params.get("token")) $("token").value = params.get("token");
if (params.get("autostart")) {
  start().then(async () => {
    const secs = Number(params.get("g2g") || 0);
    if (!secs || !state.session) return;
    while (window.__s2t.framesSeen < 25) await new Promise((r) => setTimeout(r, 100));
    await measureG2G(secs);
  });
}
window.__s2t.measure = measureG2G;

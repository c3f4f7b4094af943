// The MUSHRA page: sample-synchronous switching between decoded stimuli (Web Audio), sliders, and the API.
//
// Every stimulus of a page is decoded into an AudioBuffer. Play starts one AudioBufferSourceNode per
// stimulus, all at the same context time and offset, each through its own GainNode; only the selected
// one has gain 1. Switching ramps the gains over SWITCH_RAMP_S at one context time, so the new stimulus
// continues at exactly the sample where the old one was. Loops set the same loop points on every source.
"use strict";

const SWITCH_RAMP_S = 0.005;     // cross-fade when switching: seamless, yet long enough not to click
const START_DELAY_S = 0.05;      // sources are scheduled this far ahead so they all start on the same sample
const MIN_LOOP_S = 0.2;          // a shorter loop region is widened to this
const STIMULUS_KEYS = "abcdefghijkl";  // keyboard letters of stimuli A, B, C, ...
const LABELS = [[80, "Excellent"], [60, "Good"], [40, "Fair"], [20, "Poor"], [0, "Bad"]];
const INITIAL_SCORE = 0;

const $ = (id) => document.getElementById(id);
const state = { listener: null, pages: [], index: 0, context: null, player: null, buffers: new Map() };

function word(score) {
  for (const [lower, label] of LABELS) if (score >= lower) return label;
  return LABELS[LABELS.length - 1][1];
}

function show(sectionId) {
  for (const id of ["welcome", "training", "rating", "thanks"]) $(id).hidden = id !== sectionId;
}

function setStatus(text) { $("status").textContent = text; }
function setError(text) { $("error").textContent = text; }

async function api(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const document_ = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(document_.error || `the server answered ${response.status}`);
  return document_;
}

async function loadBuffer(url) {
  if (!state.buffers.has(url)) {
    const pending = (async () => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`cannot load ${url}: ${response.status}`);
      return state.context.decodeAudioData(await response.arrayBuffer());
    })();
    // a failed load is forgotten, so that the next page that needs it tries again
    pending.catch(() => { if (state.buffers.get(url) === pending) state.buffers.delete(url); });
    state.buffers.set(url, pending);
  }
  return state.buffers.get(url);
}

// Plays a set of equally long buffers in lockstep; index 0 is the reference.
class Engine {
  constructor(context, buffers, onEnded) {
    this.context = context;
    this.buffers = buffers;
    this.onEnded = onEnded;
    this.duration = Math.min(...buffers.map((b) => b.duration));
    this.gains = buffers.map(() => {
      const gain = context.createGain();
      gain.gain.value = 0;
      gain.connect(context.destination);
      return gain;
    });
    this.sources = null;
    this.selected = 0;
    this.offset = 0;          // position when stopped, or at startedAt when playing
    this.startedAt = 0;
    this.loop = { on: false, start: 0, end: this.duration };
  }

  get playing() { return this.sources !== null; }

  position() {
    if (!this.playing) return this.offset;
    let p = this.offset + Math.max(0, this.context.currentTime - this.startedAt);
    if (this.loop.on && p >= this.loop.end) {
      p = this.loop.start + ((p - this.loop.end) % (this.loop.end - this.loop.start));
    }
    return Math.min(p, this.duration);
  }

  play(from = this.offset) {
    this.halt();
    let offset = Math.max(0, Math.min(from, this.duration));
    if (this.loop.on && (offset < this.loop.start || offset >= this.loop.end)) offset = this.loop.start;
    if (!this.loop.on && offset >= this.duration) offset = 0;
    const when = this.context.currentTime + START_DELAY_S;
    this.sources = this.buffers.map((buffer, i) => {
      const source = this.context.createBufferSource();
      source.buffer = buffer;
      source.loop = this.loop.on;
      source.loopStart = this.loop.start;
      source.loopEnd = this.loop.end;
      source.connect(this.gains[i]);
      this.gains[i].gain.cancelScheduledValues(0);
      this.gains[i].gain.setValueAtTime(i === this.selected ? 1 : 0, when);
      source.start(when, offset);
      return source;
    });
    const first = this.sources[0];
    first.onended = () => {
      if (this.sources && this.sources[0] === first) { this.sources = null; this.offset = 0; this.onEnded(); }
    };
    this.startedAt = when;
    this.offset = offset;
  }

  halt() {
    if (!this.sources) return;
    const position = this.position();
    for (const source of this.sources) { source.onended = null; source.stop(); source.disconnect(); }
    this.sources = null;
    this.offset = position;
  }

  stop() { this.halt(); this.offset = this.loop.on ? this.loop.start : 0; }

  select(index) {
    this.selected = index;
    if (!this.playing) return;
    const now = this.context.currentTime;
    this.gains.forEach((gain, i) => {
      gain.gain.cancelScheduledValues(now);
      gain.gain.setValueAtTime(gain.gain.value, now);
      gain.gain.linearRampToValueAtTime(i === index ? 1 : 0, now + SWITCH_RAMP_S);
    });
  }

  setLoop(on, start, end) {
    const wasPlaying = this.playing;
    const position = this.position();
    this.halt();
    start = Math.max(0, Math.min(start, this.duration - MIN_LOOP_S));
    end = Math.min(this.duration, Math.max(end, start + MIN_LOOP_S));
    this.loop = { on, start, end };
    this.offset = position;
    if (wasPlaying) this.play(position);
  }

  dispose() { this.halt(); for (const gain of this.gains) gain.disconnect(); }
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

// The transport and the stimulus rows of one page, in `container`; `stored` holds scores to restore.
class Player {
  constructor(container, page, { prefix, stored }) {
    this.container = container;
    this.page = page;
    this.heard = new Set();
    this.sliders = [];
    this.engine = null;
    this.frame = 0;
    this.seeking = false;
    container.replaceChildren();
    this.build(prefix, stored);
  }

  build(prefix, stored) {
    const transport = element("div", { class: "transport" });
    this.playButton = element("button", { type: "button", class: "play", "aria-pressed": "false",
                                          disabled: "" }, "Play");
    this.playButton.addEventListener("click", () => this.toggle());
    const loopLabel = element("label");
    this.loopBox = element("input", { type: "checkbox", class: "loop" });
    loopLabel.append(this.loopBox, " Loop");
    this.loopBox.addEventListener("change", () => this.applyLoop());
    const seekLabel = element("label", { for: `${prefix}-seek` }, "Position ");
    this.seek = element("input", { type: "range", id: `${prefix}-seek`, class: "seek", min: "0", step: "0.01",
                                   max: String(this.page.duration_s), value: "0" });
    this.seek.addEventListener("pointerdown", () => { this.seeking = true; });
    this.seek.addEventListener("pointerup", () => { this.seeking = false; });
    this.seek.addEventListener("change", () => this.seekTo(Number(this.seek.value)));
    this.time = element("output", { for: `${prefix}-seek` }, "0.00 s");
    this.loopStart = element("input", { type: "number", id: `${prefix}-loop-start`, min: "0", step: "0.1",
                                        value: "0" });
    this.loopEnd = element("input", { type: "number", id: `${prefix}-loop-end`, min: "0", step: "0.1",
                                      value: this.page.duration_s.toFixed(1) });
    for (const box of [this.loopStart, this.loopEnd]) box.addEventListener("change", () => this.applyLoop());
    const fromLabel = element("label", { for: this.loopStart.id }, "from ");
    const toLabel = element("label", { for: this.loopEnd.id }, "to ");
    const position = element("span", { class: "group" });
    position.append(seekLabel, this.seek, " ", this.time);
    const region = element("span", { class: "group" });
    region.append(loopLabel, " ", fromLabel, this.loopStart, " ", toLabel, this.loopEnd, " s");
    transport.append(this.playButton, position, region);

    const table = element("table", { class: "stimuli" });
    const head = element("tr");
    const scale = element("div", { class: "scale", "aria-hidden": "true" });
    for (const [, label] of [...LABELS].reverse()) scale.append(element("span", {}, label));
    const scaleCell = element("th", { class: "slider-cell" });
    scaleCell.append(scale);
    head.append(element("th", {}, "Listen"), scaleCell, element("th", {}, "Score"));
    table.append(head);
    this.selectButtons = [];
    const rows = [{ name: "Reference", key: "R" }, ...this.page.stimuli.map((s, i) => ({
      name: STIMULUS_KEYS[i].toUpperCase(), key: STIMULUS_KEYS[i].toUpperCase(), stimulus: s }))];
    rows.forEach((row, index) => {
      const tr = element("tr");
      const button = element("button", { type: "button", class: "select", disabled: "",
                                         "aria-pressed": index === 0 ? "true" : "false",
                                         "aria-keyshortcuts": row.key },
                             index === 0 ? "Reference" : `Version ${row.name}`);
      button.addEventListener("click", () => this.select(index));
      this.selectButtons.push(button);
      const buttonCell = element("td");
      buttonCell.append(button);
      const sliderCell = element("td", { class: "slider-cell" });
      const scoreCell = element("td");
      if (row.stimulus) {
        const value = stored && row.stimulus.key in stored ? stored[row.stimulus.key] : INITIAL_SCORE;
        const slider = element("input", { type: "range", class: "slider", min: "0", max: "100", step: "1",
                                          value: String(value), id: `${prefix}-score-${row.name}`,
                                          "aria-label": `Score for ${row.name}`,
                                          "data-key": row.stimulus.key });
        const output = element("output", { for: slider.id }, String(value));
        const label = element("span", { class: "word" }, word(value));
        const update = () => {
          output.textContent = slider.value;
          label.textContent = word(Number(slider.value));
          slider.setAttribute("aria-valuetext", `${slider.value}, ${word(Number(slider.value))}`);
        };
        update();
        slider.addEventListener("input", () => { update(); this.select(index); });
        slider.addEventListener("focus", () => this.select(index));
        this.sliders.push(slider);
        sliderCell.append(slider);
        scoreCell.append(output, " ", label);
        if (stored) this.heard.add(index);
      }
      tr.append(buttonCell, sliderCell, scoreCell);
      table.append(tr);
    });
    this.container.append(transport, table);
    this.markHeard();
  }

  async load() {
    setStatus("Loading the recordings…");
    const buffers = await Promise.all(pageUrls(this.page).map(loadBuffer));
    this.engine = new Engine(state.context, buffers, () => this.ended());
    this.playButton.disabled = false;
    for (const button of this.selectButtons) button.disabled = false;
    setStatus("Ready.");
    this.container.dataset.ready = "true";
  }

  toggle() {
    if (!this.engine) return;
    if (this.engine.playing) { this.engine.stop(); this.ended(); return; }
    state.context.resume();
    this.engine.play();
    if (this.engine.selected > 0) this.heard.add(this.engine.selected);
    this.markHeard();
    this.playButton.setAttribute("aria-pressed", "true");
    this.playButton.textContent = "Stop";
    this.container.dataset.playing = "true";
    const tick = () => {
      if (!this.engine || !this.engine.playing) return;
      const position = this.engine.position();
      if (!this.seeking) this.seek.value = position.toFixed(2);
      this.time.textContent = `${position.toFixed(2)} s`;
      this.container.dataset.position = position.toFixed(3);
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  ended() {
    cancelAnimationFrame(this.frame);
    this.playButton.setAttribute("aria-pressed", "false");
    this.playButton.textContent = "Play";
    this.container.dataset.playing = "false";
    if (this.engine) this.seek.value = this.engine.position().toFixed(2);
  }

  select(index) {
    if (!this.engine) return;
    this.engine.select(index);
    this.selectButtons.forEach((b, i) => b.setAttribute("aria-pressed", i === index ? "true" : "false"));
    if (this.engine.playing && index > 0) { this.heard.add(index); this.markHeard(); }
    this.container.dataset.selected = String(index);
  }

  markHeard() {
    this.selectButtons.forEach((b, i) => b.classList.toggle("heard", i > 0 && this.heard.has(i)));
  }

  seekTo(seconds) {
    if (!this.engine) return;
    if (this.engine.playing) this.engine.play(seconds); else this.engine.offset = seconds;
  }

  applyLoop() {
    if (!this.engine) return;
    this.engine.setLoop(this.loopBox.checked, Number(this.loopStart.value), Number(this.loopEnd.value));
    this.loopStart.value = this.engine.loop.start.toFixed(1);
    this.loopEnd.value = this.engine.loop.end.toFixed(1);
  }

  setLoopEdge(which) {
    if (!this.engine) return;
    const position = this.engine.position().toFixed(1);
    (which === "start" ? this.loopStart : this.loopEnd).value = position;
    this.applyLoop();
  }

  scores() { return Object.fromEntries(this.sliders.map((s) => [s.dataset.key, Number(s.value)])); }

  problem() {
    const missing = this.page.stimuli.map((_, i) => i).filter((i) => !this.heard.has(i + 1))
      .map((i) => STIMULUS_KEYS[i].toUpperCase());
    if (missing.length) {
      return `Please listen to every version while playing (not yet: ${missing.join(", ")}).`;
    }
    if (!this.sliders.some((s) => Number(s.value) === 100)) {
      return "One version is the reference itself: rate at least one version 100.";
    }
    return "";
  }

  dispose() { cancelAnimationFrame(this.frame); if (this.engine) this.engine.dispose(); this.engine = null; }
}

function pageUrls(page) { return page ? [page.reference, ...page.stimuli.map((s) => s.url)] : []; }

// Decoded audio is large (float32 at the context's rate): keep this page's and the next page's only.
function keepBuffers(urls) {
  for (const url of [...state.buffers.keys()]) if (!urls.includes(url)) state.buffers.delete(url);
  for (const url of urls) loadBuffer(url).catch(() => {});  // the page that needs it reports a failure
}

function usePlayer(player, nextPage) {
  if (state.player) state.player.dispose();
  state.player = player;
  keepBuffers([...pageUrls(player.page), ...pageUrls(nextPage)]);
  return player.load().catch((error) => setError(error.message));
}

function showTraining() {
  show("training");
  const select = $("training-item");
  select.replaceChildren(...state.pages.map((_, i) => element("option", { value: String(i) },
                                                              `Recording ${i + 1}`)));
  const open = () => usePlayer(new Player($("training-player"), state.pages[Number(select.value)],
                                          { prefix: "training", stored: null }));
  select.onchange = open;
  return open();
}

function showPage(index) {
  state.index = index;
  const page = state.pages[index];
  const total = state.pages.length;
  const done = state.pages.filter((p) => p.scores).length;
  show("rating");
  setError("");
  $("page-title").textContent = `Item ${index + 1} of ${total}`;
  $("progress").max = total;
  $("progress").value = done;
  $("progress-text").textContent = `${done} of ${total} saved`;
  $("back").disabled = index === 0;
  const ready = usePlayer(new Player($("rating-player"), page, { prefix: "rating", stored: page.scores }),
                          state.pages[index + 1]);
  $("page-title").focus();
  return ready;
}

function firstUnrated() {
  const index = state.pages.findIndex((p) => !p.scores);
  return index === -1 ? null : index;
}

async function submitPage() {
  const player = state.player;
  const problem = player.problem();
  if (problem) { setError(problem); return; }
  const page = state.pages[state.index];
  const scores = player.scores();
  $("submit").disabled = true;
  try {
    await api("/api/rate", { listener: state.listener, item: page.item, scores });
    page.scores = scores;
    setError("");
    player.dispose();
    const following = state.pages[state.index + 1];
    const next = following && !following.scores ? state.index + 1 : firstUnrated();
    if (next === null) { show("thanks"); setStatus("All ratings saved."); $("thanks-title").focus(); }
    else await showPage(next);
  } catch (error) {
    setError(`Not saved: ${error.message}. Check the connection and press the button again.`);
  } finally {
    $("submit").disabled = false;
  }
}

async function start(event) {
  event.preventDefault();
  setError("");
  const name = $("listener").value.trim();
  if (!name) { setError("Please enter a name or listener id."); return; }
  if (!state.context) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) {
      setError("This browser cannot play Web Audio; please use a current Firefox, Chrome or Safari.");
      return;
    }
    state.context = new Context();
  }
  $("start").disabled = true;
  try {
    const session = await api("/api/start", { listener: name });
    state.listener = session.listener;
    state.pages = session.pages;
    document.title = session.title;
    $("title").textContent = session.title;
    const resumed = state.pages.some((p) => p.scores);
    if (resumed) {
      const next = firstUnrated();
      if (next === null) { show("thanks"); return; }
      setStatus(`Welcome back, ${state.listener}: continuing where you stopped.`);
      await showPage(next);
    } else {
      await showTraining();
    }
  } catch (error) {
    setError(error.message);
  } finally {
    $("start").disabled = false;
  }
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  const editing = target.tagName === "SELECT" || target.tagName === "TEXTAREA" ||
    (target.tagName === "INPUT" && !["range", "checkbox"].includes(target.type));
  const player = state.player;
  if (editing || !player || $("rating").hidden && $("training").hidden) return;
  const key = event.key.toLowerCase();
  if (key === " ") {
    if (target.tagName === "BUTTON" || target.type === "checkbox") return;  // Space presses it
    event.preventDefault();
    player.toggle();
  } else if (key === "r") {
    player.select(0);
  } else if (key === "o") {
    player.loopBox.checked = !player.loopBox.checked;
    player.applyLoop();
  } else if (key === "[" || key === "]") {
    player.setLoopEdge(key === "[" ? "start" : "end");
  } else if (STIMULUS_KEYS.includes(key) && STIMULUS_KEYS.indexOf(key) < player.page.stimuli.length) {
    player.select(STIMULUS_KEYS.indexOf(key) + 1);
  }
}

function init() {
  $("start-form").addEventListener("submit", start);
  $("begin").addEventListener("click", () => {
    const next = firstUnrated();
    if (next === null) show("thanks"); else showPage(next);
  });
  $("submit").addEventListener("click", submitPage);
  $("back").addEventListener("click", () => { if (state.index > 0) showPage(state.index - 1); });
  $("review").addEventListener("click", () => showPage(0));
  for (const id of ["page-title", "thanks-title"]) $(id).tabIndex = -1;
  document.addEventListener("keydown", onKey);
  $("listener").focus();
}

document.addEventListener("DOMContentLoaded", init);

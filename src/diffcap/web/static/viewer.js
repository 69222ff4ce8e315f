// diffcap viewer. Every piece of model text goes into the DOM through textContent, never
// innerHTML, so a caption holding HTML or <script> is shown as text and runs nothing.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("diffcap-data").textContent);
  const STATIC = config.mode === "static";
  const $ = (id) => document.getElementById(id);
  const MARKER_W = 76; // px a thumbnail needs on the axis before the next one shares its lane
  const LANE_H = 62;
  const MAX_LANES = 4;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // --- data sources: the server's JSON API (one page per request), or the report's data
  // files, loaded one after another as scripts (a file:// page may not fetch()) ---
  const PAGE = config.page_size || 100;
  function searchText(v) {
    if (v._search === undefined) {
      const parts = [v.video_id, v.summary || ""];
      for (const k of v.keyframes || []) parts.push(k.caption || "");
      for (const c of v.clips || []) parts.push(c.content || "");
      v._search = parts.join("\n").toLowerCase();
    }
    return v._search;
  }
  function matches(v, f) {
    const q = (f.q || "").trim().toLowerCase();
    if (q && searchText(v).indexOf(q) < 0) return false;
    for (const k of ["status", "mode", "model", "run"]) {
      if (f[k] && v[k] !== f[k]) return false;
    }
    return true;
  }
  function staticSource() {
    const videos = [];
    const waiting = new Map(); // chunk -> callbacks waiting for it
    let loaded = 0;
    window.diffcapChunk = (n, items) => {
      for (const v of items) videos[v.key] = v;
      loaded += 1;
      for (const cb of waiting.get(n) || []) cb();
      waiting.delete(n);
      document.body.dataset.loaded = loaded === config.chunks ? "1" : "";
      if (onChunk) onChunk(loaded);
    };
    function load(n) {
      if (n >= config.chunks) return;
      const s = document.createElement("script");
      s.src = config.files + "data-" + String(n).padStart(5, "0") + ".js";
      s.onload = () => load(n + 1);
      s.onerror = () => { $("count").textContent = "cannot read " + s.src; };
      document.head.appendChild(s);
    }
    function chunkReady(n) {
      return new Promise((resolve) => {
        if (n >= config.chunks || videos[n * config.chunk_size]) resolve();
        else waiting.set(n, [...(waiting.get(n) || []), resolve]);
      });
    }
    let onChunk = null;
    return {
      start: (cb) => { onChunk = cb; load(0); return chunkReady(0); },
      complete: () => loaded === config.chunks,
      meta: async () => config.meta,
      list: async (f, offset) => {
        const hits = videos.filter((v) => v && matches(v, f));
        return { total: hits.length, offset: offset, items: hits.slice(offset, offset + PAGE) };
      },
      detail: async (key) => {
        await chunkReady(Math.floor(key / config.chunk_size));
        return videos[key];
      },
    };
  }
  const source = STATIC
    ? staticSource()
    : {
        start: async () => {},
        complete: () => true,
        meta: async () => (await fetch("/api/meta")).json(),
        list: async (f, offset) => {
          const q = new URLSearchParams({ ...f, offset: offset, limit: PAGE });
          return (await fetch("/api/videos?" + q)).json();
        },
        detail: async (key) => {
          const r = await fetch("/api/videos/" + encodeURIComponent(key));
          return r.ok ? r.json() : null;
        },
      };

  // --- list + filters + pages ---
  function filters() {
    const f = { q: $("q").value };
    for (const [id, k] of [["f-status", "status"], ["f-mode", "mode"], ["f-model", "model"], ["f-run", "run"]]) {
      if ($(id).value) f[k] = $(id).value;
    }
    return f;
  }

  function fillFacets(meta) {
    for (const sel of document.querySelectorAll("select[data-facet]")) {
      sel.appendChild(el("option", null, "all " + sel.dataset.label)).value = "";
      for (const v of meta[sel.dataset.facet] || []) sel.appendChild(el("option", null, v)).value = v;
      sel.addEventListener("change", () => refreshList(0));
    }
  }

  let listSeq = 0;
  let offset = 0;
  async function refreshList(start) {
    const seq = ++listSeq;
    const res = await source.list(filters(), start === undefined ? offset : start);
    if (seq !== listSeq) return; // a newer query already answered
    offset = res.offset;
    const list = $("list");
    list.replaceChildren();
    for (const v of res.items) {
      const item = el("button", "item status-" + v.status);
      item.type = "button";
      item.dataset.key = v.key;
      item.appendChild(el("span", "vid", v.video_id));
      item.appendChild(el("span", "meta", [v.run, v.status, v.mode, v.model].filter(Boolean).join(" · ")));
      item.appendChild(el("span", "snippet", v.snippet));
      if ($("detail").dataset.key === String(v.key)) item.classList.add("selected");
      item.addEventListener("click", () => show(v.key));
      list.appendChild(item);
    }
    const last = Math.min(res.total, offset + res.items.length);
    $("page-info").textContent = res.total ? (offset + 1) + "–" + last + " of " + res.total : "";
    $("prev").disabled = offset <= 0;
    $("next").disabled = last >= res.total;
    const more = source.complete() ? "" : " (loading…)";
    $("count").textContent = res.total + " video" + (res.total === 1 ? "" : "s") + more;
    list.dataset.offset = offset;
  }

  // --- one video ---
  async function show(key) {
    const v = await source.detail(key);
    if (!v) return;
    render(key, v);
    follow(key, v);
  }

  // a live run (diffcap caption --live): the timeline grows as captions come (server-sent events)
  let live = null;
  function follow(key, v) {
    if (live) live.close();
    live = null;
    if (!(v.provenance && v.provenance.live) || typeof EventSource === "undefined") return;
    live = new EventSource("/api/live/" + key + "?from=" + (v.provenance.live_offset || 0));
    let timer = null;
    live.addEventListener("caption", (ev) => {
      v.keyframes.push(JSON.parse(ev.data).keyframe_view);
      v.duration = Math.max(v.duration || 0, v.keyframes[v.keyframes.length - 1].time);
      v.provenance.live_offset = Number(ev.lastEventId);
      clearTimeout(timer);
      timer = setTimeout(() => { if ($("detail").dataset.key === String(key)) render(key, v); }, 250);
    });
    live.addEventListener("end", () => { live.close(); live = null; });
  }

  function render(key, v) {
    history.replaceState(null, "", "#v=" + key);
    for (const b of document.querySelectorAll("#list .item")) {
      b.classList.toggle("selected", b.dataset.key === String(key));
    }
    const d = $("detail");
    d.replaceChildren();
    d.dataset.key = key;
    d.appendChild(el("h2", "title", v.video_id));
    d.appendChild(el("p", "meta", [v.run, v.status, v.mode, v.model, v.video_path].filter(Boolean).join(" · ")));
    for (const n of v.notes || []) {
      d.appendChild(el("p", "note status-" + n.status, n.status + " at " + (n.stage || "?") + ": " + n.reason + " — " + n.message));
    }
    const player = renderPlayer(d, v);
    if (v.keyframes.length) renderTimeline(d, v, player);
    section(d, "Summary", summaryBlock(v, player));
    if (v.clips.length) {
      const ul = el("ul", "clips");
      for (const c of v.clips) {
        const li = el("li", "clip");
        li.appendChild(el("span", "time", c.label));
        li.appendChild(el("span", "text", c.content));
        li.addEventListener("click", () => player(c.start));
        ul.appendChild(li);
      }
      section(d, "Clip summaries", ul);
    }
    section(d, "Usage", el("pre", "usage", JSON.stringify(v.usage || {}, null, 2)));
    section(d, "Provenance", el("pre", "provenance", JSON.stringify(v.provenance || {}, null, 2)));
  }

  function summaryBlock(v, play) {
    const tree = v.summary_tree;
    if (!tree) return v.summary ? el("p", "summary", v.summary) : el("p", "empty", "No summary.");
    const box = el("div", "summary-tree");
    const root = tree.nodes[tree.root];
    box.appendChild(root.parts.length ? cited("p", "summary", root.parts, play) : el("p", "summary", v.summary || ""));
    box.appendChild(el("p", "meta", "Summary tree: " + tree.levels + " levels"));
    const top = el("div", "tree");
    for (const id of root.kids) top.appendChild(treeNode(tree, id, play, true));
    for (const id of tree.rest) top.appendChild(treeNode(tree, id, play, false));
    box.appendChild(top);
    return box;
  }

  // A node of the summary tree: its time range (a button that seeks to its start) and its
  // text, the nodes of the level below inside a <details> that opens and closes. Each node is
  // drawn once (the server gives every node to one parent), so this is linear in the nodes.
  function treeNode(tree, id, play, open) {
    const n = tree.nodes[id];
    const leaf = !n.kids.length;
    const box = el(leaf ? "div" : "details", "tree-node");
    box.dataset.level = n.level;
    box.dataset.id = n.id;
    if (open && !leaf) box.open = true;
    const head = el(leaf ? "div" : "summary", "tree-head");
    const range = el("button", "tree-range", n.label);
    range.type = "button";
    range.dataset.time = n.start;
    range.title = "play from " + n.label.split("–")[0];
    range.addEventListener("click", (e) => { e.preventDefault(); play(n.start); });
    head.appendChild(range);
    head.appendChild(cited("span", "tree-text", n.parts, play));
    if (n.captions) head.appendChild(el("span", "tree-count", n.captions + " caption" + (n.captions === 1 ? "" : "s")));
    box.appendChild(head);
    if (!leaf) {
      const kids = el("div", "tree-kids");
      for (const k of n.kids) kids.appendChild(treeNode(tree, k, play, false));
      box.appendChild(kids);
    }
    return box;
  }

  // Text whose citations ({text, t} parts, cut by the server from the node's citation list)
  // are buttons that seek the player; every piece goes in as text, none as markup.
  function cited(tag, cls, parts, play) {
    const node = el(tag, cls);
    for (const p of parts) {
      if (typeof p.t !== "number") { node.appendChild(document.createTextNode(p.text)); continue; }
      const b = el("button", "cite", p.text);
      b.type = "button";
      b.dataset.time = p.t;
      b.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); play(p.t); });
      node.appendChild(b);
    }
    return node;
  }

  function section(parent, title, body) {
    const s = el("section", "block");
    s.appendChild(el("h3", null, title));
    s.appendChild(body);
    parent.appendChild(s);
  }

  // Returns play(time). Served pages get a <video> whose src supports HTTP Range; the static
  // report links to the file with a media fragment (#t=) instead.
  function renderPlayer(d, v) {
    if (STATIC) {
      if (!v.media) return () => {};
      const a = el("a", "file-link", "Open the video file");
      a.href = v.media;
      d.appendChild(a);
      return (t) => window.open(v.media + "#t=" + t.toFixed(3), "_blank");
    }
    if (!v.media) {
      d.appendChild(el("p", "empty", "The video file is not available to play."));
      return () => {};
    }
    const video = el("video", "player");
    video.controls = true;
    video.preload = "metadata";
    video.src = v.media;
    const warn = el("p", "play-error");
    video.addEventListener("error", () => {
      warn.textContent = "This browser cannot play this file; open it in a video player.";
    });
    d.appendChild(video);
    d.appendChild(warn);
    return (t) => {
      const go = () => {
        video.currentTime = t;
        const p = video.play();
        if (p && p.catch) p.catch(() => {}); // autoplay refusals are harmless here
      };
      if (video.readyState >= 1) go();
      else video.addEventListener("loadedmetadata", go, { once: true });
    };
  }

  // Linear in the keyframes (a long video has thousands): markers are built off the page in
  // a fragment, and their tick lengths are measured all at once before any is set, so the
  // browser lays the axis out once rather than once per marker.
  function renderTimeline(d, v, play) {
    const duration = v.duration > 0 ? v.duration : v.keyframes.reduce((a, k) => Math.max(a, k.time), 1);
    const axis = el("div", "axis");
    axis.dataset.duration = duration;
    const cards = el("ol", "kf-cards");
    d.appendChild(axis);
    const width = axis.clientWidth || 800;
    // more keyframes than thumbnails fit on the axis: thin ticks (the cards keep thumbnails)
    const dense = v.keyframes.length > MAX_LANES * Math.max(1, Math.floor(width / MARKER_W));
    const laneEnd = [];
    let lanes = 1;
    const markers = [];
    const frag = document.createDocumentFragment();
    v.keyframes.forEach((k, i) => {
      const x = (k.time / duration) * width;
      let lane = 0;
      if (!dense) {
        lane = laneEnd.findIndex((end) => end + MARKER_W <= x);
        if (lane < 0) lane = laneEnd.length < MAX_LANES ? laneEnd.length : laneEnd.indexOf(Math.min(...laneEnd));
        laneEnd[lane] = x;
        lanes = Math.max(lanes, lane + 1);
      }
      const m = el("button", dense ? "kf-marker kf-tick" : "kf-marker");
      m.type = "button";
      m.dataset.time = k.time;
      m.dataset.idx = k.idx;
      m.style.left = ((k.time / duration) * 100).toFixed(4) + "%";
      m.style.top = lane * LANE_H + "px";
      m.title = k.label;
      if (!dense) {
        if (k.src) m.appendChild(thumb(k));
        m.appendChild(el("span", "kf-time", k.label));
      }
      m.addEventListener("click", () => { focusCard(i); play(k.time); });
      markers.push(m);
      frag.appendChild(m);

      const c = el("li", "kf-card");
      c.dataset.time = k.time;
      if (k.src) c.appendChild(thumb(k));
      const body = el("div", "kf-body");
      body.appendChild(el("span", "kf-time", k.label));
      if (k.camera) {
        const badge = el("span", "kf-camera", "camera: " + k.camera);
        badge.title = "camera motion measured since the previous keyframe";
        body.appendChild(badge);
      }
      body.appendChild(el("p", "kf-caption", k.caption === null ? "(no caption)" : k.caption));
      c.appendChild(body);
      c.addEventListener("click", () => play(k.time));
      cards.appendChild(c);
    });
    axis.appendChild(frag);
    axis.style.height = lanes * LANE_H + 28 + "px";
    // a tick from each thumbnail down to the time axis, through the lanes below it
    const h = axis.clientHeight;
    const drops = markers.map((m) => h - parseFloat(m.style.top) - m.offsetHeight);
    markers.forEach((m, i) => m.style.setProperty("--drop", drops[i] + "px"));
    const tick = el("div", "axis-line");
    tick.appendChild(el("span", "axis-start", "00:00"));
    tick.appendChild(el("span", "axis-end", v.duration_label || fmt(duration)));
    axis.appendChild(tick);
    section(d, "Keyframes and differential captions", cards);
    let focused = null;
    function focusCard(i) {
      const c = cards.children[i];
      if (focused) focused.classList.remove("focused");
      c.classList.add("focused");
      focused = c;
      if (c.scrollIntoView) c.scrollIntoView({ block: "nearest" });
    }
  }

  function thumb(k) {
    const img = el("img", "thumb");
    img.src = k.src;
    img.alt = "keyframe at " + k.label;
    img.loading = "lazy";
    return img;
  }

  function fmt(s) {
    const m = Math.floor(s / 60);
    return String(m).padStart(2, "0") + ":" + (s - m * 60).toFixed(2).padStart(5, "0");
  }

  async function start() {
    fillFacets(await source.meta());
    let timer = null;
    $("q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => refreshList(0), 150); });
    $("prev").addEventListener("click", () => refreshList(Math.max(0, offset - PAGE)));
    $("next").addEventListener("click", () => refreshList(offset + PAGE));
    // a static report refreshes its list as data files arrive (counts and search grow)
    let pending = null;
    await source.start(() => { clearTimeout(pending); pending = setTimeout(() => refreshList(), 100); });
    await refreshList(0);
    const m = /^#v=(\d+)$/.exec(location.hash);
    if (m) await show(Number(m[1]));
    document.body.dataset.ready = "1";
  }
  start();
})();

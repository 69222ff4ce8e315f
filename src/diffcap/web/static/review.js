// diffcap blind review. The server sends two captions as "left" and "right" and an opaque
// item token; it never says which system wrote which. Text goes in with textContent only.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("diffcap-data").textContent);
  const params = new URLSearchParams(location.search);
  const reviewer = params.get("reviewer") || config.reviewer || "anonymous";
  const $ = (id) => document.getElementById(id);
  let current = null;
  let busy = false;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function next() {
    const r = await fetch("/api/review/next?" + new URLSearchParams({ reviewer: reviewer }));
    if (!r.ok) { $("item").replaceChildren(el("p", "error", await r.text())); return; }
    render(await r.json());
  }

  function render(data) {
    $("progress").textContent = data.progress.voted + " / " + data.progress.total + " done";
    const main = $("item");
    main.replaceChildren();
    current = data.done ? null : data;
    document.body.dataset.item = current ? current.item : "";
    if (!current) {
      main.appendChild(el("p", "done", "All items reviewed. Thank you!"));
      return;
    }
    const strip = el("div", "strip");
    for (const k of data.keyframes) {
      const fig = el("figure", "kf");
      if (k.src) {
        const img = el("img");
        img.src = k.src;
        img.alt = "keyframe at " + k.label;
        fig.appendChild(img);
      }
      fig.appendChild(el("figcaption", null, k.label));
      strip.appendChild(fig);
    }
    main.appendChild(strip);
    if (data.media) {
      const video = el("video", "player");
      video.controls = true;
      video.preload = "metadata";
      video.src = data.media;
      main.appendChild(video);
      // clicking a keyframe plays the video from that keyframe's time
      strip.querySelectorAll(".kf").forEach((fig, i) => {
        fig.addEventListener("click", () => {
          const go = () => { video.currentTime = data.keyframes[i].time; video.play().catch(() => {}); };
          if (video.readyState >= 1) go(); else video.addEventListener("loadedmetadata", go, { once: true });
        });
      });
    }
    const cols = el("div", "columns");
    for (const [side, label, key] of [["left", "Left", "1 / ←"], ["right", "Right", "2 / →"]]) {
      const col = el("section", "caption " + side);
      col.id = "caption-" + side;
      col.appendChild(el("h2", null, label));
      col.appendChild(el("p", "text", data[side]));
      const b = el("button", "vote", label + " is better (" + key + ")");
      b.type = "button";
      b.dataset.choice = side;
      b.addEventListener("click", () => vote(side));
      col.appendChild(b);
      cols.appendChild(col);
    }
    main.appendChild(cols);
    const tie = el("button", "vote tie", "Tie (3 / ↓)");
    tie.type = "button";
    tie.dataset.choice = "tie";
    tie.addEventListener("click", () => vote("tie"));
    main.appendChild(tie);
  }

  async function vote(choice) {
    if (!current || busy) return; // one vote per item, even on a double press
    busy = true;
    try {
      const r = await fetch("/api/review/vote", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ reviewer: reviewer, item: current.item, choice: choice }),
      });
      if (!r.ok) throw new Error(await r.text());
      await next();
    } catch (e) {
      $("item").appendChild(el("p", "error", "Vote not saved: " + e.message));
    } finally {
      busy = false;
    }
  }

  const KEYS = { "1": "left", ArrowLeft: "left", "2": "right", ArrowRight: "right", "3": "tie", ArrowDown: "tie" };
  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.target.tagName === "INPUT") return;
    const choice = KEYS[ev.key];
    if (choice) { ev.preventDefault(); vote(choice); }
  });

  $("reviewer").textContent = "Reviewer: " + reviewer;
  next();
})();

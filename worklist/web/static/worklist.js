// Refresh the worklist rows without reloading the page: poll the JSON API (cookie session).
(function () {
  "use strict";
  const table = document.getElementById("worklist");
  if (!table) { return; }
  const api = table.dataset.api;
  const pollMs = parseInt(table.dataset.pollMs || "5000", 10);
  const tbody = table.querySelector("tbody");
  const updated = document.getElementById("updated");

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  function findingDiv(f, cls) {
    return el("div", f.label + " " + f.probability.toFixed(2), cls);
  }

  // Findings above threshold shown, the others folded behind a count, the model(s) once.
  function findingsCell(s) {
    const td = el("td");
    if (s.ai_status === "not_available") {
      td.appendChild(el("span", "AI not available: " + s.ai_reason, "ai-na"));
    } else if (s.ai_status === "pending") {
      td.appendChild(el("span", "AI pending", "muted"));
    } else if (!s.findings.length) {
      td.appendChild(el("span", "no findings", "muted"));
    } else {
      s.findings.filter(function (f) { return f.crossed; }).forEach(function (f) {
        td.appendChild(findingDiv(f, "finding crossed"));
      });
      if (s.folded_text) {
        const details = el("details", null, "folded");
        details.appendChild(el("summary", s.folded_text));
        s.findings.filter(function (f) { return !f.crossed; }).forEach(function (f) {
          details.appendChild(findingDiv(f, "finding"));
        });
        td.appendChild(details);
      }
      td.appendChild(el("small", s.finding_models.join(", "), "models"));
    }
    return td;
  }

  function row(s) {
    const tr = el("tr", null, "p-" + s.priority);
    tr.dataset.uid = s.study_instance_uid;
    const p = el("td");
    p.appendChild(el("span", s.priority, "badge " + s.priority));
    if (s.priority !== s.clinical_priority) { p.appendChild(el("small", " (clinical " + s.clinical_priority + ")")); }
    tr.appendChild(p);
    const study = el("td");
    const a = el("a", s.patient_name || s.patient_id || "(no name)");
    a.href = "/studies/" + encodeURIComponent(s.study_instance_uid);
    study.appendChild(a);
    study.appendChild(el("br"));
    study.appendChild(el("small", s.study_description + " " + s.accession_number));
    if (s.study_datetime_text) {
      study.appendChild(el("br"));
      study.appendChild(el("small", s.study_datetime_text, "study-dt"));
    }
    study.appendChild(el("br"));
    const viewer = el("a", "Open in viewer", "open-viewer");
    viewer.href = "/viewer/viewer?StudyInstanceUIDs=" + encodeURIComponent(s.study_instance_uid);
    study.appendChild(viewer);
    tr.appendChild(study);
    tr.appendChild(el("td", s.site));
    tr.appendChild(el("td", s.modalities.join(", ")));
    tr.appendChild(findingsCell(s));
    tr.appendChild(el("td", s.waiting));
    tr.appendChild(el("td", s.due_at ? s.due_at.slice(0, 16).replace("T", " ") : ""));
    tr.appendChild(el("td", s.status + (s.claimed_by ? " by " + s.claimed_by : "")));
    return tr;
  }

  // New P1 studies: announced (banner, optional tone) when a poll brings one not seen before.
  // The P1 rows of the first load are "seen": opening the page announces nothing.
  const alertBox = document.getElementById("p1-alert");
  const soundBox = document.getElementById("p1-sound");
  const SOUND_KEY = "triage.worklist.p1Sound";
  const seenP1 = new Set();
  tbody.querySelectorAll("tr.p-P1[data-uid]").forEach(function (tr) { seenP1.add(tr.dataset.uid); });
  let audio = null;

  if (soundBox) {
    try { soundBox.checked = window.localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { /* no storage */ }
    soundBox.addEventListener("change", function () {
      try { window.localStorage.setItem(SOUND_KEY, soundBox.checked ? "on" : "off"); } catch (e) { /* no storage */ }
      if (soundBox.checked) { beep(); }  // a user gesture: lets the browser start audio
    });
  }

  function beep() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      audio = audio || new Ctx();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.6);
    } catch (e) { /* audio is optional */ }
  }

  function announce(items) {
    const fresh = items.filter(function (s) { return s.priority === "P1" && !seenP1.has(s.study_instance_uid); });
    items.forEach(function (s) { if (s.priority === "P1") { seenP1.add(s.study_instance_uid); } });
    if (!fresh.length || !alertBox) { return; }
    const names = fresh.map(function (s) {
      return (s.patient_name || s.patient_id || "(no name)") + (s.study_description ? " (" + s.study_description + ")" : "");
    });
    alertBox.replaceChildren();
    alertBox.appendChild(el("span", "New P1 " + (fresh.length > 1 ? "studies" : "study") + ": " + names.join(", ")));
    alertBox.dataset.uids = fresh.map(function (s) { return s.study_instance_uid; }).join(" ");
    const dismiss = el("button", "Dismiss");
    dismiss.type = "button";
    dismiss.addEventListener("click", function () { alertBox.hidden = true; });
    alertBox.appendChild(dismiss);
    alertBox.hidden = false;
    if (soundBox && soundBox.checked) { beep(); }
  }

  async function refresh() {
    try {
      const resp = await fetch(api, { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (resp.status === 401) { window.location = "/login?next=/"; return; }
      if (!resp.ok) { throw new Error("HTTP " + resp.status); }
      const data = await resp.json();
      announce(data.items);
      const rows = data.items.map(row);
      if (!rows.length) {
        const tr = el("tr"); const td = el("td", "No studies.", "muted"); td.colSpan = 8; tr.appendChild(td); rows.push(tr);
      }
      tbody.replaceChildren.apply(tbody, rows);
      if (updated) { updated.textContent = "updated " + new Date().toLocaleTimeString(); }
    } catch (err) {
      if (updated) { updated.textContent = "update failed: " + err.message; }
    }
  }
  window.setInterval(refresh, pollMs);
}());

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

  function findingsCell(s) {
    const td = el("td");
    if (s.ai_status === "not_available") {
      td.appendChild(el("span", "AI not available: " + s.ai_reason, "ai-na"));
    } else if (s.ai_status === "pending") {
      td.appendChild(el("span", "AI pending", "muted"));
    } else if (!s.findings.length) {
      td.appendChild(el("span", "no findings", "muted"));
    } else {
      s.findings.forEach(function (f) {
        const div = el("div", f.label + " " + f.probability.toFixed(2) + " ", f.crossed ? "crossed" : "");
        div.appendChild(el("small", "(" + f.model.name + " " + f.model.version + ")"));
        td.appendChild(div);
      });
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

  async function refresh() {
    try {
      const resp = await fetch(api, { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (resp.status === 401) { window.location = "/login?next=/"; return; }
      if (!resp.ok) { throw new Error("HTTP " + resp.status); }
      const data = await resp.json();
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

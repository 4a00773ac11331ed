// prodsafe dashboard: polls /api/state and renders it. Every value from
// Redis goes into the page as text (textContent), never as markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // The bearer token, from the page's #token=... (never sent to a server by
  // the browser), kept for this tab only.
  function takeToken() {
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("token")) {
      sessionStorage.setItem("prodsafe-token", hash.get("token"));
      history.replaceState(null, "", location.pathname);
    }
  }
  takeToken();
  window.addEventListener("hashchange", takeToken);
  function authorization() {
    const token = sessionStorage.getItem("prodsafe-token");
    return token ? { Authorization: "Bearer " + token } : {};
  }

  // The page asks every second (the server reads Redis every --refresh).
  const pollMs = 1000;
  let actionsAllowed = false;

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "onclick") node.addEventListener("click", value);
      // Through the CSSOM: the Content Security Policy refuses style attributes.
      else if (key === "style") Object.assign(node.style, value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function duration(ms) {
    if (ms === null || ms === undefined || ms < 0) return "?";
    if (ms < 1000) return ms + "ms";
    const s = ms / 1000;
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + "s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    const h = Math.floor(m / 60);
    if (h < 48) return h + "h" + String(m % 60).padStart(2, "0") + "m";
    return Math.floor(h / 24) + "d" + String(h % 24).padStart(2, "0") + "h";
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour12: false });
  }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function setStatus(kind, text) {
    const status = $("status");
    status.className = "pill pill-" + kind;
    status.textContent = text;
  }

  // Hides the fleet's data and says why: the page never shows stale values.
  function showDown(title, detail) {
    $("fleet").hidden = true;
    const banner = $("banner");
    banner.replaceChildren(title, el("small", {}, detail || ""));
    banner.hidden = false;
  }

  // ---- breakers -------------------------------------------------------
  function breakerRow(b, rules) {
    const state = b.state || "DAMAGED";
    const failures = b.failures || 0;
    const calls = failures + (b.successes || 0);
    const threshold = rules.failure_threshold || 1;
    const share = Math.min(1, failures / threshold);
    const meter = el("div", { class: "meter" + (share >= 1 ? " over" : share >= 0.5 ? " hot" : "") },
      el("span", { style: { width: Math.round(share * 100) + "%" } }));
    let probe = "";
    if (state === "OPEN") probe = "in " + duration(b.retry_after_ms);
    else if (state === "HALF_OPEN") probe = "probing";
    const forced = b.forced_by
      ? b.forced_by + (b.forced_at_ms ? " at " + clock(b.forced_at_ms) : "")
      : "";
    const actions = el("td", { class: "actions-col" });
    if (state !== "DAMAGED") {
      for (const [action, label] of [["open", "Force open"], ["close", "Force close"],
                                     ["disable", "Disable"], ["reset", "Reset"]]) {
        actions.append(el("button", {
          class: "action", type: "button", dataset: { action, jobType: b.job_type },
          onclick: () => confirmBreaker(b.job_type, action, label, state),
        }, label));
      }
    }
    return el("tr", { dataset: { jobType: b.job_type, state } },
      el("td", { class: "id", "data-label": "Job type" }, b.job_type),
      el("td", { "data-label": "State" }, el("span", { class: "state state-" + state }, state),
        b.error ? el("div", { class: "muted" }, b.error) : null),
      el("td", { class: "failures", "data-label": "Failures" }, failures + " / " + threshold, meter),
      el("td", { class: "num calls", "data-label": "Calls" }, calls),
      el("td", { class: "num trips", "data-label": "Trips" }, b.trips === undefined ? "" : b.trips),
      el("td", { class: "probe", "data-label": "Next probe" }, probe),
      el("td", { class: "forced", "data-label": "Forced by" }, forced),
      actions);
  }

  function renderBreakers(doc) {
    const rules = doc.breaker_rules || {};
    $("breaker-rules").textContent = "Failures counted over the last " + duration(rules.window_ms) +
      "; the breakers open at " + rules.failure_threshold + " (as --window and --failure-threshold say). " +
      "Calls are the outcomes recorded in Redis: in count mode a success while CLOSED is not sent.";
    const breakers = doc.breakers || [];
    replaceRows($("breaker-table").tBodies[0], breakers.map((b) => breakerRow(b, rules)));
    $("breakers-empty").hidden = breakers.length > 0;
    const transitions = doc.transitions || [];
    $("transitions").replaceChildren(...transitions.map((t) => el("li", {},
      el("time", {}, clock(t.at_ms)), t.job_type + ": ",
      t.from ? t.from + " → " : "new, ", el("span", { class: "state state-" + t.to }, t.to))));
    $("transitions-empty").hidden = transitions.length > 0;
  }

  // ---- retries --------------------------------------------------------
  function renderRetries(doc) {
    const retry = doc.retry || {};
    const box = $("histograms");
    if (retry.error) {
      box.replaceChildren(el("p", { class: "banner" }, "Cannot read the retry data: " + retry.error));
      return;
    }
    const buckets = retry.buckets || [];
    const histograms = retry.histograms || [];
    box.replaceChildren(...histograms.map((h) => {
      if (h.error) return el("div", { class: "histogram", dataset: { jobType: h.job_type } }, h.job_type + ": damaged: " + h.error);
      const counts = buckets.map((b) => h.counts[b] || 0);
      const max = Math.max(1, ...counts);
      const retried = h.total ? (100 * (h.total - counts[0]) / h.total).toFixed(1) : "0.0";
      return el("div", { class: "histogram", dataset: { jobType: h.job_type } },
        el("div", { class: "histogram-title" }, el("span", { class: "id" }, h.job_type),
          el("span", { class: "muted" }, h.total + " jobs, " + retried + "% retried")),
        el("div", { class: "bars" }, ...counts.map((n, i) => el("div", {
          class: "bar" + (i > 0 ? " retried" : ""), dataset: { bucket: buckets[i], count: n },
          title: n + " jobs took " + buckets[i] + " attempt" + (buckets[i] === "1" ? "" : "s"),
        }, el("span", { class: "value" }, n), el("div", { class: "fill", style: { height: (100 * n / max) + "%" } })))),
        el("div", { class: "bar-labels" }, ...buckets.map((b) => el("span", {}, b))));
    }));
    $("histograms-empty").hidden = histograms.length > 0;
    const open = retry.open_windows || { total: 0, windows: [] };
    $("open-windows-total").textContent = "(" + open.total + ")";
    replaceRows($("window-table").tBodies[0], open.windows.map((w) => el("tr", { dataset: { jobId: w.job_id } },
      el("td", { class: "id" }, w.job_id),
      el("td", {}, w.error ? "damaged: " + w.error : w.job_type),
      el("td", { class: "num" }, w.attempts === undefined ? "" : w.attempts),
      el("td", {}, duration(w.open_for_ms)),
      el("td", {}, w.since_last_attempt_ms === undefined ? "" : duration(w.since_last_attempt_ms) + " ago"))));
    const alerts = Array.isArray(doc.alerts) ? doc.alerts : [];
    $("alerts").replaceChildren(...alerts.map((a) => el("li", { dataset: { type: a.type } },
      el("time", {}, a.at_ms ? clock(a.at_ms) : "?"), el("strong", {}, a.type), " ",
      a.job_type ? "[" + a.job_type + "] " : "", a.message || a.error || "")));
    $("alerts-empty").hidden = alerts.length > 0;
    if (doc.alerts && doc.alerts.error) $("alerts-empty").textContent = "Cannot read alerts: " + doc.alerts.error;
  }

  // ---- effects --------------------------------------------------------
  function clearButton(row) {
    return el("td", { class: "actions-col" }, el("button", {
      class: "action", type: "button", dataset: { action: "clear", key: row.key },
      onclick: () => confirmClear(row),
    }, "Clear"));
  }

  function renderEffects(doc) {
    const effects = doc.effects || {};
    if (effects.error) {
      $("sweep").textContent = "Cannot read the effect records: " + effects.error;
      return;
    }
    const sweep = effects.sweep || {};
    $("sweep").textContent = effects.records + " records" +
      (effects.complete ? ", counted by a SCAN sweep finished at " + clock(sweep.completed_ms)
                        : ", counting (first SCAN sweep under way: " + sweep.keys_examined + " keys so far)") +
      "; " + sweep.scan_calls + " SCAN calls per sweep.";
    const byType = effects.by_type || {};
    const types = Object.keys(byType).sort();
    replaceRows($("effect-counts").tBodies[0], types.map((type) => {
      const s = byType[type];
      const known = (s.in_progress || 0) + (s.expired || 0) + (s.completed || 0) + (s.failed || 0);
      const total = Object.values(s).reduce((a, b) => a + b, 0);
      return el("tr", { dataset: { type } }, el("td", { class: "id" }, type),
        el("td", { class: "num", dataset: { state: "in_progress" } }, s.in_progress || 0),
        el("td", { class: "num", dataset: { state: "expired" } }, s.expired || 0),
        el("td", { class: "num", dataset: { state: "completed" } }, s.completed || 0),
        el("td", { class: "num", dataset: { state: "failed" } }, s.failed || 0),
        el("td", { class: "num", dataset: { state: "other" } }, total - known));
    }));
    $("effects-empty").hidden = types.length > 0;
    const oldest = effects.oldest_in_progress;
    $("oldest").textContent = oldest
      ? "Oldest in progress: " + oldest.type + " " + oldest.id + ", " + duration(oldest.age_ms) + " old" +
        (oldest.lease_live ? " (lease live)" : " (lease expired)")
      : "Nothing in progress.";
    replaceRows($("orphan-table").tBodies[0], (effects.orphans || []).map((r) => el("tr", { dataset: { key: r.key } },
      el("td", {}, r.type), el("td", { class: "id" }, r.id), el("td", {}, duration(r.age_ms)),
      el("td", { class: "num" }, r.token), clearButton(r))));
    replaceRows($("failed-table").tBodies[0], (effects.failed || []).map((r) => el("tr", { dataset: { key: r.key } },
      el("td", {}, r.type), el("td", { class: "id" }, r.id), el("td", {}, duration(r.age_ms)),
      el("td", {}, r.error), clearButton(r))));
  }

  // ---- runtime checks -------------------------------------------------
  function renderChecks(doc) {
    const checks = doc.checks || {};
    const summary = checks.summary || {};
    if (checks.error) {
      $("checks-summary").textContent = "(cannot run: " + checks.error + ")";
      replaceRows($("check-table").tBodies[0], []);
      return;
    }
    $("checks-summary").textContent = checks.results
      ? "(" + summary.ok + " ok, " + summary.warning + " warning, " + summary.error + " error, " +
        summary.critical + " critical; run " + duration(checks.age_ms) + " ago)"
      : checks.error ? "(cannot run them: " + checks.error + ")" : "";
    replaceRows($("check-table").tBodies[0], (checks.results || []).map((c) => el("tr", { dataset: { check: c.name, level: c.level } },
      el("td", {}, c.name + (c.node ? " (" + c.node + ")" : "")),
      el("td", { class: "level-" + c.level }, c.level),
      el("td", { class: "id" }, c.observed),
      el("td", {}, c.message, c.remediation ? el("div", { class: "muted" }, "Fix: " + c.remediation) : null))));
  }

  function render(doc) {
    actionsAllowed = !!doc.actions_allowed;
    document.body.classList.toggle("read-only", !actionsAllowed);
    $("mode").textContent = actionsAllowed ? "actions allowed" : "read-only";
    $("redis-url").textContent = doc.redis ? doc.redis.url : "";
    $("updated").textContent = doc.generated_at_ms ? "read " + clock(doc.generated_at_ms) : "";
    if (doc.loading) {
      setStatus("wait", "reading Redis…");
      return;
    }
    const stale = doc.age_ms > Math.max(3 * (doc.refresh_ms || 1000), 5000);
    if (!doc.redis.reachable) {
      setStatus("down", "Redis unreachable");
      showDown("Redis unreachable: nothing is shown until it answers again.", doc.redis.error);
      return;
    }
    if (stale) {
      setStatus("down", "Redis not answering");
      showDown("Redis has not answered for " + duration(doc.age_ms) + ": nothing is shown until it does.", "");
      return;
    }
    $("banner").hidden = true;
    $("fleet").hidden = false;
    setStatus("live", "live");
    $("updated").textContent = "read " + clock(doc.generated_at_ms) + " in " + doc.redis.read_ms + " ms";
    renderBreakers(doc);
    renderRetries(doc);
    renderEffects(doc);
    renderChecks(doc);
  }

  async function poll() {
    try {
      const response = await fetch("/api/state", { headers: authorization(), cache: "no-store" });
      if (response.status === 401) {
        setStatus("down", "token needed");
        showDown("This dashboard needs its token.", "Open it as " + location.origin + "/#token=TOKEN");
      } else if (!response.ok) {
        setStatus("down", "error " + response.status);
        showDown("The dashboard answered " + response.status + ".", (await response.json()).error);
      } else {
        render(await response.json());
      }
    } catch (error) {
      setStatus("down", "dashboard unreachable");
      showDown("The dashboard server does not answer.", String(error));
    }
    setTimeout(poll, pollMs);
  }

  // ---- actions --------------------------------------------------------
  let pending = null;

  function ask(text, withForce, run) {
    $("confirm-text").textContent = text;
    $("confirm-force").checked = false;
    $("confirm-force-row").hidden = !withForce;
    $("confirm").hidden = false;
    pending = run;
    $("confirm-cancel").focus();
  }

  function toast(text, isError) {
    const box = $("toast");
    box.textContent = text;
    box.className = "toast" + (isError ? " error" : "");
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", cache: "no-store",
      headers: Object.assign({ "Content-Type": "application/json" }, authorization()),
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || "error " + response.status);
    return answer;
  }

  const consequences = {
    open: "Every worker of the fleet refuses calls for this job type until it is closed or reset.",
    close: "Every worker calls again, and the failure window and trips are cleared.",
    disable: "Every call is allowed and nothing is counted until it is reset.",
    reset: "The breaker returns to CLOSED with an empty window.",
  };

  function confirmBreaker(jobType, action, label, state) {
    ask(label + " the breaker of '" + jobType + "' (now " + state + ")? " + consequences[action], false, async () => {
      const answer = await post("/api/actions/breaker", { job_type: jobType, action });
      toast("Breaker " + jobType + ": " + answer.previous + " → " + answer.state);
    });
  }

  function confirmClear(row) {
    const what = row.type + " " + row.id + " (" + row.state + ", token " + row.token + ")";
    ask("Delete the effect record " + what + "? The next call for it runs the effect again.", row.lease_live, async () => {
      const answer = await post("/api/actions/clear-effect",
        { type: row.type, id: row.id, force: $("confirm-force").checked });
      toast(answer.deleted ? "Deleted " + answer.key : answer.key + " was already gone");
    });
  }

  function closeConfirm() {
    $("confirm").hidden = true;
    pending = null;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("confirm-cancel").addEventListener("click", closeConfirm);
    $("confirm-ok").addEventListener("click", async () => {
      const run = pending;
      closeConfirm();
      if (!run) return;
      try {
        await run();
      } catch (error) {
        toast(error.message, true);
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("confirm").hidden) closeConfirm();
    });
    poll();
  });
})();

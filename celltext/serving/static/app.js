// celltext web page: ask, show the answer and its provenance, send feedback, draw the
// lattice activity as one heat map per Z slice. Plain JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let last = null; // the last answer, for feedback

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function describeError(status, body) {
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => d.msg).join("; ");
  }
  if (body && body.detail) return String(body.detail);
  return "request failed with status " + status;
}

async function postJSON(url, payload) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error(describeError(response.status, body));
  return body;
}

function heatColor(v) {
  // 0 -> dark blue, 0.5 -> orange, 1 -> bright yellow
  const t = Math.max(0, Math.min(1, v));
  const r = Math.round(255 * Math.min(1, t * 1.6));
  const g = Math.round(255 * Math.max(0, t - 0.35) / 0.65);
  const b = Math.round(120 * (1 - t));
  return "rgb(" + r + "," + g + "," + b + ")";
}

function drawActivity(activity) {
  const section = $("activity-section");
  const holder = $("activity");
  holder.innerHTML = "";
  section.hidden = false;
  if (!activity || !activity.available) {
    $("activity-note").textContent =
      "No lattice view: " + ((activity && activity.reason) || "not available for this model") + ".";
    return;
  }
  const [nx, ny, nz] = activity.shape;
  // colour from the weakest (dark) to the strongest (bright) cell of the whole lattice
  let lo = Infinity, hi = -Infinity;
  for (const plane of activity.values) for (const row of plane) for (const v of row) {
    lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  const span = hi > lo ? hi - lo : 1;
  $("activity-note").textContent =
    "Lattice " + nx + "\u00d7" + ny + "\u00d7" + nz + ": one heat map per Z slice (X across, Y down). " +
    "Brighter cells fired more (mean |state| over the steps; dark = weakest cell at " +
    (lo * activity.max).toFixed(3) + ", bright = strongest at " + activity.max.toFixed(3) + ").";
  const cell = Math.max(4, Math.floor(96 / Math.max(nx, ny)));
  for (let z = 0; z < nz; z++) {
    const fig = document.createElement("div");
    fig.className = "slice";
    const canvas = document.createElement("canvas");
    canvas.width = nx * cell;
    canvas.height = ny * cell;
    canvas.dataset.z = String(z);
    const ctx = canvas.getContext("2d");
    for (let x = 0; x < nx; x++) {
      for (let y = 0; y < ny; y++) {
        ctx.fillStyle = heatColor((activity.values[x][y][z] - lo) / span);
        ctx.fillRect(x * cell, y * cell, cell, cell);
      }
    }
    fig.appendChild(canvas);
    const caption = document.createElement("span");
    caption.textContent = "z = " + z;
    fig.appendChild(caption);
    holder.appendChild(fig);
  }
}

function showAnswer(a) {
  last = a;
  $("result").hidden = false;
  $("answer").textContent = a.answer;
  $("confidence").textContent = a.confidence.toFixed(2);
  $("confidence-meter").value = a.confidence;
  const fb = $("fallback");
  const source = a.provenance || (a.fallback ? "retrieved" : "generated");
  fb.textContent = source + (a.fallback_reason ? " \u2014 " + a.fallback_reason : "");
  fb.className = source === "generated" || source === "edited" ? "" : "fallback-yes";
  $("latency").textContent = a.latency_ms.toFixed(1) + " ms";
  $("model").textContent = a.model;
  const hasSource = Boolean(a.source_question) && !a.abstained;
  $("source-box").hidden = !hasSource;
  $("source-question").textContent = hasSource ? a.source_question : "";
  $("source-fact").textContent = hasSource ? a.source_fact : "";
  const showGenerated = (a.fallback || a.abstained) && a.generated;
  $("generated-box").hidden = !showGenerated;
  $("generated").textContent = showGenerated ? a.generated : "";
  $("feedback-status").textContent = "";
  $("thumb-up").disabled = false;
  $("thumb-down").disabled = false;
  drawActivity(a.activity);
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  showError("");
  if (!question) { showError("Please type a question."); return; }
  const button = $("ask");
  button.disabled = true;
  try {
    showAnswer(await postJSON("/v1/answer", { question: question, include_activity: true }));
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

async function sendFeedback(rating) {
  if (!last) return;
  $("thumb-up").disabled = true;
  $("thumb-down").disabled = true;
  try {
    await postJSON("/v1/feedback", {
      question: last.question, answer: last.answer, rating: rating,
      model: last.model, fallback: last.fallback, confidence: last.confidence,
    });
    $("feedback-status").textContent = "Thanks, feedback saved.";
  } catch (err) {
    $("feedback-status").textContent = "Could not save feedback: " + err.message;
    $("thumb-up").disabled = false;
    $("thumb-down").disabled = false;
  }
}

$("ask-form").addEventListener("submit", ask);
$("thumb-up").addEventListener("click", () => sendFeedback("up"));
$("thumb-down").addEventListener("click", () => sendFeedback("down"));

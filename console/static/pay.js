/* Pay page: STK push through the JSON API, then poll the order until it settles.
   Also: copy the till number and keep the WhatsApp message's recipient line up to date. */
(function () {
  "use strict";

  var POLL_EVERY_MS = 2000;
  var GIVE_UP_AFTER_MS = 3 * 60 * 1000;
  var SETTLED_OK = ["paid", "delivered"];
  var SETTLED_BAD = ["failed", "expired", "cancelled", "needs_review"];
  var CHECK_PHONE = "Check your phone and enter your M-Pesa PIN";
  var SLOW_SEND = "M-Pesa is slow to answer. If the PIN prompt reaches your phone, enter your PIN: this page updates when the payment arrives.";
  var RESEND_OFFERED = "That prompt can no longer be paid, so you can ask for a new one.";
  var RESEND_LATER = "If no prompt comes, this page offers to send a new one as soon as the first can no longer be paid. Please do not pay twice.";

  function csrfToken(form) {
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  // ---- STK ----------------------------------------------------------------------------
  var form = document.getElementById("stk-form");
  var statusBox = document.getElementById("stk-status");
  var statusText = statusBox && statusBox.querySelector(".status-text");
  var retry = document.getElementById("stk-retry");
  var waitHint = document.getElementById("stk-wait-hint");
  var resend = document.getElementById("stk-resend");
  var WAIT_HINT_MS = (form && Number(form.dataset.waitHintMs)) || 30000;
  var pollTimer = null;
  var following = null;  // the order being polled: {url, startedAt}

  function showStatus(text, kind) {
    statusBox.hidden = false;
    statusBox.className = "status" + (kind ? " " + kind : "");
    statusText.textContent = text;
    retry.hidden = !(kind === "failed");
    retry.textContent = "Try again";
    waitHint.hidden = true;
    resend.hidden = true;
  }

  // After a while without an answer, say what is happening; offer a new prompt only when the
  // server says the first one can no longer be paid (retry_allowed), never on a timer alone.
  function showWaitHint(o) {
    waitHint.hidden = false;
    waitHint.querySelector(".wait-phone").textContent = o.payer || "your phone";
    offerResend(o);
    waitHint.querySelector(".wait-next").textContent = o.retry_allowed ? RESEND_OFFERED : RESEND_LATER;
  }

  function offerResend(o) {
    var offered = Boolean(o.retry_allowed && o.retry_url);
    resend.hidden = !offered;
    if (o.retry_url) resend.dataset.url = o.retry_url;
    // Beside "Send the prompt again", the form's button is for paying from another number.
    retry.textContent = offered ? "Use another number" : "Try again";
  }

  function clearFieldErrors() {
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("input").forEach(function (i) {
      i.removeAttribute("aria-invalid");
      i.removeAttribute("aria-describedby");
      i.classList.remove("is-invalid");
    });
  }

  function showError(message, field) {
    var slot = field && form.querySelector('.field-error[data-field="' + field + '"]');
    if (slot) {
      slot.textContent = message;
      slot.hidden = false;
      var input = form.querySelector('[name="' + field + '"]');
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.classList.add("is-invalid");
        input.setAttribute("aria-describedby", slot.id);
        input.focus();
      }
      statusBox.hidden = true;
    } else {
      showStatus(message, "failed");
    }
  }

  function setBusy(busy) {
    form.querySelector("fieldset").disabled = busy;
  }

  function stopPolling() {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function poll(url, startedAt) {
    following = { url: url, startedAt: startedAt };
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        var o = res.body || {};
        if (!res.ok) {
          showStatus(o.error || "We could not check your payment. Please try again.", "failed");
          setBusy(false);
          return;
        }
        if (SETTLED_OK.indexOf(o.status) >= 0) {
          showStatus("Paid — receipt " + (o.receipt || o.reference) + ". Your bundle will be loaded shortly.", "paid");
          return;
        }
        if (SETTLED_BAD.indexOf(o.status) >= 0) {
          showStatus(o.message || o.status_label || "The payment did not go through.", "failed");
          offerResend(o);
          setBusy(false);
          return;
        }
        if (Date.now() - startedAt > GIVE_UP_AFTER_MS) {
          showStatus("We have not heard back from M-Pesa yet. If you paid, your bundle will follow; " +
            "otherwise try again. Reference " + (o.reference || ""), "failed");
          offerResend(o);
          setBusy(false);
          return;
        }
        if (Date.now() - startedAt > WAIT_HINT_MS) showWaitHint(o);
        pollTimer = setTimeout(function () { poll(url, startedAt); }, POLL_EVERY_MS);
      })
      .catch(function () {
        // A dropped connection on a phone is common: keep trying until we give up.
        if (Date.now() - startedAt > GIVE_UP_AFTER_MS) {
          showStatus("Connection lost. Please check your M-Pesa messages, then try again.", "failed");
          setBusy(false);
          return;
        }
        pollTimer = setTimeout(function () { poll(url, startedAt); }, POLL_EVERY_MS);
      });
  }

  if (form && form.dataset.stkUrl) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      stopPolling();
      clearFieldErrors();
      var payer = form.elements.phone_number.value.trim();
      var recipient = form.elements.recipient_phone.value.trim() || payer;
      if (!payer) { showError("Enter the M-Pesa number that will pay.", "phone_number"); return; }
      setBusy(true);
      showStatus("Sending the payment request…", "");
      fetch(form.dataset.stkUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken(form) },
        body: JSON.stringify({ phone_number: payer, recipient_phone: recipient, bundle: form.dataset.bundle })
      })
        .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
        .then(function (res) {
          var o = res.body || {};
          if (res.status === 201 || res.status === 200) {
            showStatus(CHECK_PHONE, "");
            poll(o.poll_url, Date.now());
            return;
          }
          if (res.status === 202) {
            // M-Pesa did not answer the send: the prompt may still arrive, so never offer a resend here.
            showStatus(SLOW_SEND, "");
            poll(o.poll_url, Date.now());
            return;
          }
          setBusy(false);
          showError(o.error || "Something went wrong. Please try again.", o.field);
        })
        .catch(function () {
          setBusy(false);
          showStatus("We could not reach the payment service. Check your connection and try again.", "failed");
        });
    });
    resend.addEventListener("click", function () {
      stopPolling();
      resend.disabled = true;
      fetch(resend.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken(form) }
      })
        .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
        .then(function (res) {
          var o = res.body || {};
          resend.disabled = false;
          if (res.status === 201 || res.status === 202) {
            setBusy(true);
            showStatus(res.status === 201 ? CHECK_PHONE : SLOW_SEND, "");
            poll(o.poll_url, Date.now());
            return;
          }
          showStatus(o.error || "We could not send a new prompt. Please try again.", res.status === 409 ? "" : "failed");
          // Refused because the first prompt may still be paid: keep following it.
          if (res.status === 409 && following) poll(following.url, following.startedAt);
        })
        .catch(function () {
          resend.disabled = false;
          showStatus("We could not reach the payment service. Check your connection and try again.", "failed");
          if (following) poll(following.url, following.startedAt);
        });
    });
    retry.addEventListener("click", function () {
      stopPolling();
      statusBox.hidden = true;
      setBusy(false);
      form.elements.phone_number.focus();
    });
  }

  // ---- Till: copy button and the WhatsApp message ---------------------------------------
  var copy = document.getElementById("copy-till");
  if (copy) {
    copy.addEventListener("click", function () {
      var value = copy.dataset.copy;
      var done = function () {
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = "Copy"; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(value).then(done, function () {});
      } else {
        var t = document.createElement("textarea");
        t.value = value;
        t.setAttribute("readonly", "");
        t.style.position = "absolute";
        t.style.left = "-9999px";
        document.body.appendChild(t);
        t.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
        document.body.removeChild(t);
      }
    });
  }

  var wa = document.getElementById("whatsapp-link");
  var tillRecipient = document.getElementById("till-recipient");
  if (wa && tillRecipient) {
    tillRecipient.addEventListener("input", function () {
      var text = wa.dataset.text.replace(/Recipient Number: .*/, "Recipient Number: " + tillRecipient.value.trim());
      wa.href = "https://wa.me/" + wa.dataset.number + "?text=" + encodeURIComponent(text);
    });
  }
})();

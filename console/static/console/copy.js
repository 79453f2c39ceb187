// Copy buttons and select-on-click boxes in the console, wired here rather than in inline
// on* attributes, which the Content-Security-Policy forbids.
//   <textarea data-select-on-click>…</textarea>  selects its text when clicked
//   <button data-copy>                          copies data-text, else the preceding textarea
(function () {
  "use strict";

  function fallbackCopy(box) {
    if (!box || typeof box.select !== "function") return Promise.reject(new Error("nothing to copy"));
    box.select();
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var box = target.closest("[data-select-on-click]");
    if (box && typeof box.select === "function") box.select();
    var button = target.closest("button[data-copy]");
    if (!button) return;
    var source = button.previousElementSibling;
    var text = button.dataset.text !== undefined ? button.dataset.text : source && source.value;
    var copied = navigator.clipboard && text !== undefined
      ? navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(source); })
      : fallbackCopy(source);
    copied
      .then(function () { button.textContent = button.dataset.copiedLabel || "Copied"; })
      .catch(function () {});
  });
})();

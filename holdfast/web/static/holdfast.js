// holdfast: the little JavaScript the pages use. Every page works without it.
"use strict";

// Drag-and-drop onto a .torrent field: the dropped file fills the plain file input,
// which is what the form posts either way.
function setUpDropzones(root) {
  for (const zone of root.querySelectorAll("[data-dropzone]")) {
    if (zone.dataset.ready) continue;
    zone.dataset.ready = "1";
    const input = zone.querySelector("input[type=file]");
    const name = zone.querySelector("[data-dropzone-name]");
    const show = () => {
      if (name) name.textContent = input.files.length ? "Chosen: " + input.files[0].name : "";
    };
    input.addEventListener("change", show);
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        show();
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => setUpDropzones(document));
document.addEventListener("htmx:load", (event) => setUpDropzones(event.target));

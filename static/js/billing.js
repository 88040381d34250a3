// Print buttons on the receipt and cash-up pages (a static file: the Content-Security-Policy allows no
// inline script). Without JavaScript the browser's own Print still works, with the same print stylesheet.
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});

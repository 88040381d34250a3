// The print button, without an inline onclick the Content-Security-Policy would block.
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});

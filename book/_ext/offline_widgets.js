// The ipywidgets renderer served by the site itself (book/_ext/offline_assets.py). Loaded
// after RequireJS and before the renderer (@jupyter-widgets/html-manager's embed-amd.js).
(function () {
  'use strict';
  // The renderer finds its fonts and icons next to its own module's address: point that
  // module at our copy (otherwise they are looked for beside the page).
  const here = new URL('html-manager', document.currentScript.src).href;
  require.config({paths: {'@jupyter-widgets/html-manager/dist': here}});
  // It typesets widget labels with MathJax 2's API (MathJax.Hub.Queue); the book loads MathJax 3,
  // whose deferred script has run by DOMContentLoaded, before the widgets are drawn.
  document.addEventListener('DOMContentLoaded', () => {
    if (window.MathJax && !window.MathJax.Hub) {
      window.MathJax.Hub = {Queue: job => (window.MathJax.typesetPromise ? window.MathJax.typesetPromise([job[2]]) : null)};
    }
  });
})();

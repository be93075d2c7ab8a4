// MathJax 3, served from this site (no CDN). The ignoreHtmlClass pattern typesets both the paper pages
// (arithmatex output) and the mkdocs-jupyter notebook pages.
window.MathJax = {
  loader: {paths: {mathjax: new URL("mathjax", document.currentScript.src).href.replace(/\/$/, "")}},
  tex: {inlineMath: [["\\(", "\\)"], ["$", "$"]], displayMath: [["\\[", "\\]"], ["$$", "$$"]],
        processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: "tex2jax_ignore|md-search|md-nav|md-header", processHtmlClass: "arithmatex|jp-RenderedMarkdown|jp-MarkdownOutput|md-typeset", enableMenu: false},
  chtml: {fontURL: new URL("mathjax/output/chtml/fonts/woff-v2", document.currentScript.src).href}
};

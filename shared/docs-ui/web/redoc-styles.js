// Quper's own: lets ReDoc style itself under `Content-Security-Policy: default-src 'self'`.
//
// ReDoc's libraries (styled-components, perfect-scrollbar) put their CSS into
// <style> elements they create with document.createElement("style"). That CSP
// forbids inline <style> elements (only 'unsafe-inline', a nonce or a hash
// would allow them), so the browser gives them no stylesheet and ReDoc fails.
// Loaded before the ReDoc bundle, this file hands those libraries constructed
// stylesheets (new CSSStyleSheet(), adopted by the document) instead: CSP does
// not govern stylesheets built by same-origin script, and no inline style
// exists anywhere on the page.
"use strict";

(() => {
  const createElement = Document.prototype.createElement;

  Document.prototype.createElement = function (tagName, options) {
    // Only the page's own <style> elements: a constructed stylesheet can be
    // adopted by the document it was made for and no other.
    if (this !== document || typeof tagName !== "string" || tagName.toLowerCase() !== "style") {
      return createElement.call(this, tagName, options);
    }
    const sheet = new CSSStyleSheet();
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    // An inert stand-in that can sit in <head> where the <style> would have.
    const element = createElement.call(document, "template");
    // styled-components writes rules with element.sheet.insertRule(...).
    Object.defineProperty(element, "sheet", { value: sheet });
    // perfect-scrollbar writes its CSS as the element's text.
    new MutationObserver(() => {
      const css = element.textContent;
      if (css) {
        sheet.replaceSync(css);
      }
    }).observe(element, { childList: true, characterData: true, subtree: true });
    return element;
  };
})();

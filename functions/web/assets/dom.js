/* The DOM helpers both pages use (the console and /docs), loaded before their own script.
   `el` builds an element from properties and children; every string becomes text (textContent or a text
   node), never markup, so data from the server or the user cannot inject HTML. */
"use strict";

const ImageClassifyDom = Object.freeze({
  $: (id) => document.getElementById(id),

  el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children) node.append(child);  // strings become text nodes
    return node;
  },
});

// Bundles the recipe editor (bpmn-js Modeler, bpmn-js-properties-panel, form-js editor and
// Batchline's own providers in static/ui/recipes/src/) into static/vendor/recipe-editor/:
// these npm packages ship ES modules, not browser-ready files. Run by `npm ci` (postinstall)
// and `make web-assets`; the output is git-ignored like everything else from npm.
// One preact for everything: form-js-editor pins an older copy and @bpmn-io/properties-panel
// carries its own; two preacts in one page break the properties panels' hooks ("Cannot read
// properties of null (reading 'context')"), and Batchline's entries live in both panels.
const path = require("path");
const esbuild = require("esbuild");

const src = path.join(__dirname, "static", "ui", "recipes", "src");
const out = path.join(__dirname, "static", "vendor", "recipe-editor");
const preact = path.join(__dirname, "node_modules", "preact");

const onePreact = {
  name: "one-preact",
  setup(build) {
    // "@bpmn-io/properties-panel/preact/hooks", and "../preact/hooks" inside that package
    build.onResolve({ filter: /(^@bpmn-io\/properties-panel|^\.\.)\/preact(\/[a-z-]+)?$/ }, (args) => {
      if (args.path.startsWith("..") && !args.resolveDir.includes(path.join("@bpmn-io", "properties-panel"))) return undefined;
      const sub = (args.path.match(/\/preact(\/[a-z-]+)?$/) || [])[1] || "";
      return build.resolve("preact" + sub, { kind: args.kind, resolveDir: __dirname });
    });
  },
};

esbuild
  .build({
    entryPoints: { "recipe-editor": path.join(src, "main.js"), "recipe-editor-styles": path.join(src, "vendor.css") },
    outdir: out,
    bundle: true,
    minify: true,
    sourcemap: true,
    format: "iife",
    target: ["chrome100", "firefox100", "safari15"],
    legalComments: "linked",
    alias: { preact },
    plugins: [onePreact],
    loader: { ".woff": "dataurl", ".woff2": "dataurl", ".ttf": "dataurl", ".eot": "dataurl", ".svg": "dataurl", ".png": "dataurl" },
    logLevel: "warning",
    metafile: true,
  })
  .then((result) => {
    const copies = Object.keys(result.metafile.inputs).filter((k) => /preact(\.module|\/dist\/preact)/.test(k));
    if (copies.length !== 1) throw new Error("expected one preact in the bundle, found: " + copies.join(", "));
    // one stylesheet name for the page
    const fs = require("fs");
    fs.renameSync(path.join(out, "recipe-editor-styles.css"), path.join(out, "recipe-editor.css"));
    fs.copyFileSync(path.join(__dirname, "node_modules", "bpmn-js", "LICENSE"), path.join(out, "LICENSE-bpmn-js"));
    console.log(`bundled the recipe editor to ${path.relative(__dirname, out)}`);
  })
  .catch((err) => {
    console.error(err.message);
    process.exit(1);
  });

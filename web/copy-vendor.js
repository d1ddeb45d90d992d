// Copies the browser files Batchline serves from npm packages into static/vendor/,
// so the app never loads scripts from a CDN (run by `npm install` / `npm ci`).
// Each entry: the package to copy from and its files (paths inside the package);
// files land flat in static/vendor/<name>/ under their base name.
const fs = require("fs");
const path = require("path");

const VENDOR = {
  "swagger-ui": {
    from: "swagger-ui-dist",
    files: ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
            "favicon-32x32.png", "LICENSE"],
  },
  // The read-only BPMN viewer for the batch page (done / current / pending markers).
  // Its licence requires the bpmn.io watermark to stay visible: the UI keeps it.
  "bpmn-js": {
    from: "bpmn-js",
    files: ["dist/bpmn-viewer.production.min.js", "dist/assets/diagram-js.css",
            "dist/assets/bpmn-js.css", "LICENSE"],
  },
};

for (const [name, { from, files }] of Object.entries(VENDOR)) {
  const src = path.join(__dirname, "node_modules", from);
  const dest = path.join(__dirname, "static", "vendor", name);
  fs.mkdirSync(dest, { recursive: true });
  for (const file of files) {
    fs.copyFileSync(path.join(src, file), path.join(dest, path.basename(file)));
  }
  console.log(`copied ${files.length} files of ${from} to ${path.relative(__dirname, dest)}`);
}

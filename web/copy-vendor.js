// Copies the browser files Batchline serves from npm packages into static/vendor/,
// so the app never loads scripts from a CDN (run by `npm install` / `npm ci`).
const fs = require("fs");
const path = require("path");

const VENDOR = {
  "swagger-ui": {
    from: "swagger-ui-dist",
    files: ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
            "favicon-32x32.png", "LICENSE"],
  },
};

for (const [name, { from, files }] of Object.entries(VENDOR)) {
  const src = path.join(__dirname, "node_modules", from);
  const dest = path.join(__dirname, "static", "vendor", name);
  fs.mkdirSync(dest, { recursive: true });
  for (const file of files) {
    fs.copyFileSync(path.join(src, file), path.join(dest, file));
  }
  console.log(`copied ${files.length} files of ${from} to ${path.relative(__dirname, dest)}`);
}

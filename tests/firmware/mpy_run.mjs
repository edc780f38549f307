// Runs a MicroPython script under the real MicroPython VM (WebAssembly port, in node) with the
// sensor firmware importable as the package `sensorfw`, exactly as it sits on a board.
//
//   node tests/firmware/mpy_run.mjs MICROPYTHON_MJS FIRMWARE_DIR < script.py
//
// MICROPYTHON_MJS is micropython.mjs of the npm package @micropython/micropython-webassembly-pyscript
// (`make firmware-vm` installs it under build/node). The script's print() output goes to stdout;
// a Python exception prints its traceback to stderr and exits 1.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [micropythonMjs, firmwareDir] = process.argv.slice(2);
if (!micropythonMjs || !firmwareDir) {
  console.error("usage: node mpy_run.mjs MICROPYTHON_MJS FIRMWARE_DIR < script.py");
  process.exit(2);
}
const { loadMicroPython } = await import(pathToFileURL(resolve(micropythonMjs)).href);
const script = readFileSync(0, "utf8");
const mp = await loadMicroPython({
  heapsize: 4 * 1024 * 1024,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
mp.FS.mkdir("/lib");
mp.FS.mkdir("/lib/sensorfw");
for (const name of readdirSync(firmwareDir)) {
  if (name.endsWith(".py")) {
    mp.FS.writeFile(join("/lib/sensorfw", name), readFileSync(join(firmwareDir, name)));
  }
}
try {
  mp.runPython(script);
} catch (error) {
  if (error.name !== "PythonError") throw error;
  process.stderr.write(error.message + "\n");
  process.exit(1);
}

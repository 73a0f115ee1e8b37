// The page of js/test/browser.test.mjs: exposes durq's browser entry and a
// way to start the test worker, for the test to drive with page.evaluate.
import * as durq from "/pkg/dist/browser.js";

window.durq = durq;
/** Starts worker.js with the given search parameters (db, tab, mode). */
window.startWorker = (params) => {
  const url = new URL("./worker.js", import.meta.url);
  url.search = new URLSearchParams(params).toString();
  return new Worker(url, { type: "module" });
};
/** Resolves with the next message of `worker` that has `key`. */
window.nextMessage = (worker, key) =>
  new Promise((resolve) => {
    const on = (e) => {
      if (e.data && key in e.data) {
        worker.removeEventListener("message", on);
        resolve(e.data);
      }
    };
    worker.addEventListener("message", on);
  });
window.testPageReady = true;

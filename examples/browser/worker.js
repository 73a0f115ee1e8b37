// The dedicated worker: owns the OPFS database (or, while another tab's
// worker owns it, forwards this page's calls there) and runs the jobs.
// The page may name the database through the worker's name (main.js passes
// ?db=NAME); the default is dashboard.db.

import { serve } from "durq";
import { jobs } from "./jobs.js";

serve({
  target: { opfs: self.name || "dashboard.db" },
  setup: (db) => {
    db.worker({ jobs, concurrency: 2 }).start();
  },
});

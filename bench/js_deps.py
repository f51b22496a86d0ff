"""The js side of the benchmarks runs from tests/interop's pinned npm packages: installs them with
`npm ci` when they are missing or older than the lock file, as tests/interop/run.sh does, so that
a benchmark run first in a fresh clone still measures js."""

import os
import shutil
import subprocess


def ensure_interop_modules(interop_dir, log):
    """True when tests/interop/node_modules matches its lock file (installing it if needed)."""
    modules = os.path.join(interop_dir, "node_modules")
    installed_lock = os.path.join(modules, ".package-lock.json")
    lock = os.path.join(interop_dir, "package-lock.json")
    if os.path.isfile(installed_lock) and os.path.getmtime(installed_lock) >= os.path.getmtime(lock):
        return True
    if shutil.which("npm") is None:
        log("npm is missing: js side skipped")
        return False
    log("installing tests/interop's npm packages (npm ci)")
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=interop_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        log(f"npm ci failed ({result.stderr.strip()[-400:]}): js side skipped")
        return False
    return True

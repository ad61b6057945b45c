"""The Docker delivery, checked without a Docker engine: the install script the image shares
with CI (which runs it for real in .ci/run), the image's environment as muse's configs read it,
its build context, the Dockerfiles under hadolint, the registry-free build script
(scripts/build-image.sh) linted and dry-run, and the tracking server's compose file. The image
itself is built and run by hand (minutes and gigabytes): benchmarks/README.md records how.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

REPO = Path(__file__).parents[1]
TORCH_PIN = re.search(r'"(torch==[^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)


def _install(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "install.sh"), "--dry-run", *options],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("options", "torch", "project"), [
    # .ci/run and the README: pip's own indexes, the working tree in development mode.
    (["--editable", "--extras", "dev"], [], "-e .[dev]"),
    # The image: PyTorch's CPU or CUDA wheel index, the project installed as a package.
    (["--device", "cpu"], ["--index-url", "https://download.pytorch.org/whl/cpu"], "."),
    (["--device", "cuda"], ["--index-url", "https://download.pytorch.org/whl/cu128"], "."),
])
def test_install_steps_pin_torch_first(options, torch, project) -> None:
    done = _install(*options)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        " ".join(["python -m pip install", TORCH_PIN, *torch]),
        f"python -m pip install {project}",
    ]


@pytest.mark.parametrize(("options", "message"), [
    (["--device", "gpu"], "--device must be cpu or cuda, not 'gpu'"),
    (["--devel"], "unknown option '--devel'"),
])
def test_install_refuses_bad_options(options, message) -> None:
    done = _install(*options)
    assert done.returncode == 2
    assert message in done.stderr and not done.stdout


def _final_stage() -> str:
    """The Dockerfile's last stage, the image that runs: what follows its last FROM."""
    text = (REPO / "Dockerfile").read_text()
    return text[text.rindex("\nFROM "):]


def _dockerfile_env() -> dict[str, str]:
    text = _final_stage().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for pair in line.split()[1:])


def _copied_from_context() -> list[str]:
    """The build-context paths the Dockerfile's COPY lines take (not those from a stage)."""
    dockerfile = (REPO / "Dockerfile").read_text()
    lines = re.findall(r"^COPY (?!--from=)(.+) \S+$", dockerfile, re.MULTILINE)
    return [source for line in lines for source in line.split()]


def test_the_image_runs_train_py_with_data_and_runs_on_volumes(monkeypatch) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    # torch from the DEVICE build's index, or (DEVICE empty) from pip's indexes and docker/pip/.
    assert 'RUN bash scripts/install.sh ${DEVICE:+--device "$DEVICE"}' in dockerfile
    assert re.search(r"^ARG DEVICE=cpu$", dockerfile, re.MULTILINE)
    assert "ENV PIP_NO_CACHE_DIR=1" in dockerfile and "PIP_FIND_LINKS=/tmp/pip" in dockerfile
    final = _final_stage()
    assert "COPY --from=install /opt/venv /opt/venv" in final
    assert re.search(r'^CMD \["python", "train.py"\]$', final, re.MULTILINE)
    # What the image copies is there.
    for source in _copied_from_context():
        assert (REPO / source).exists(), source
    # Its environment, as train.py's config reads it: data from /data, runs in /muse/logs.
    env = _dockerfile_env()
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["GIT_PYTHON_REFRESH"] == "quiet"  # no git in the image, no warning on each run
    del env["PATH"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    # As in a Hydra job: the paths fall back on `hydra:runtime.cwd` when a variable is unset.
    HydraConfig.instance().set_config(cfg)
    try:
        paths, data_dir, tracking_uri = dict(cfg.paths), cfg.data.dir, cfg.logger.tracking_uri
    finally:
        HydraConfig.instance().cfg = None
    volumes = re.search(r"^VOLUME (.+)$", final, re.MULTILINE).group(1)
    assert paths["data_dir"] == "/data" and data_dir == "/data"
    assert paths["log_dir"] == "/muse/logs"
    assert tracking_uri == "sqlite:////muse/logs/mlflow.db"
    assert '"/data"' in volumes and '"/muse/logs"' in volumes


def test_the_build_context_is_only_what_the_dockerfile_copies() -> None:
    patterns = [line for line in (REPO / ".dockerignore").read_text().splitlines()
                if line and not line.startswith("#")]
    # Everything is left out first (data, runs, venvs, git never reach the daemon) ...
    assert patterns[0] == "*"
    allowed = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    # ... and each COPY source is let back in, or the build fails on a missing file.
    for source in _copied_from_context():
        assert source.rstrip("/") in allowed, source
    assert allowed <= {source.rstrip("/") for source in _copied_from_context()}


def test_the_installed_package_alone_composes_a_sweep(tmp_path: Path) -> None:
    """The image has muse as pip installs it, conf/ and train.py, no source tree: the sweeps
    (`pkg://muse.sweeps`) must come with the wheel."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "muse", source / "muse", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    # Built as the image's `pip install .` builds it: in pip's isolated build environment.
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                            str(tmp_path), str(source)], capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("muse-*.whl")
    site = tmp_path / "site"
    shutil.unpack_archive(wheel, site, format="zip")
    image = tmp_path / "opt-muse"  # the image's /opt/muse
    shutil.copytree(REPO / "conf", image / "conf")
    probe = (
        "import muse; from hydra import compose, initialize_config_dir\n"
        f"with initialize_config_dir(config_dir={str(image / 'conf')!r}, version_base='1.3'):\n"
        "    cfg = compose('train', overrides=['sweep=table2_wild', 'row=lstm_att-egemaps'])\n"
        "print(muse.__file__, cfg.task.name, cfg.model.name, ','.join(cfg.features.names))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, cwd=image, env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    module, *composed = done.stdout.split()
    assert module == str(site / "muse" / "__init__.py")  # the wheel's muse, not the checkout's
    assert composed == ["wild", "lstm_att", "egemaps"]


def _hadolint() -> str:
    """The linter of the dev extra, also when the virtual environment is not activated."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: pip install -e '.[dev]'"
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/mlflow.Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    done = subprocess.run([_hadolint(), str(REPO / dockerfile)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


BUILD_IMAGE = REPO / "scripts" / "build-image.sh"


def _build_image(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    pip = {"PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"}  # the host's, passed to the build
    environment = {name: value for name, value in os.environ.items() if name not in pip}
    return subprocess.run(["bash", str(BUILD_IMAGE), "--dry-run", *options], capture_output=True,
                          text=True, timeout=60, env={**environment, **(env or {})})


def test_build_image_script_passes_bash_and_shellcheck() -> None:
    done = subprocess.run(["bash", "-n", str(BUILD_IMAGE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    done = subprocess.run(["shellcheck", str(BUILD_IMAGE)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_build_image_makes_a_debian_base_then_builds_on_it() -> None:
    done = _build_image()
    assert done.returncode == 0, done.stderr
    rootfs = "/tmp/muse-rootfs.XXXXXX"
    assert done.stdout.splitlines() == [
        "nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,"
        f"ca-certificates bookworm {rootfs} http://deb.debian.org/debian",
        f"find {rootfs}/var/cache/apt/archives {rootfs}/var/lib/apt/lists -type f -delete",
        f"tar -C {rootfs} -c . | docker import --change 'CMD [\"python3\"]' - muse-base:bookworm",
        f"rm -rf {rootfs}",
        "nice -n 10 docker build --force-rm --network host --build-arg BASE=muse-base:bookworm"
        " --build-arg DEVICE=cpu -t muse .",
        "docker images muse",
    ]


def test_build_image_on_a_given_base_with_local_wheels_and_a_ca_bundle(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl").touch()
    cert = tmp_path / "ca.crt"
    cert.touch()
    before = sorted((REPO / "docker" / "pip").iterdir())
    done = _build_image("--base", "python:3.11-slim", "--tag", "muse:test", "--wheels",
                        str(wheels), env={"PIP_CERT": str(cert),
                                          "PIP_INDEX_URL": "https://mirror.example/simple"})
    assert done.returncode == 0, done.stderr
    staged = "docker/pip/torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl"
    # No debootstrap; torch from the staged wheel (DEVICE empty: no PyTorch index), pip
    # with the host's index and CA bundle; both staged files removed after the build.
    assert done.stdout.splitlines() == [
        f"cp {wheels}/torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl {staged}",
        f"cp {cert} docker/pip/ca-bundle.crt",
        "nice -n 10 docker build --force-rm --network host --build-arg BASE=python:3.11-slim"
        " --build-arg DEVICE= --build-arg PIP_INDEX_URL=https://mirror.example/simple"
        " --build-arg PIP_CERT=/tmp/pip/ca-bundle.crt -t muse:test .",
        f"rm -f {staged} docker/pip/ca-bundle.crt",
        "docker images muse:test",
    ]
    # Every build argument the script passes is one the Dockerfile declares.
    declared = set(re.findall(r"^ARG (\w+)", (REPO / "Dockerfile").read_text(), re.MULTILINE))
    assert set(re.findall(r"--build-arg (\w+)=", done.stdout)) <= declared
    assert sorted((REPO / "docker" / "pip").iterdir()) == before  # a dry run copies nothing


@pytest.mark.parametrize(("options", "message"), [
    (["--device", "gpu"], "--device must be cpu, cuda or none, not 'gpu'"),
    (["--base"], "--base needs an image"),
    (["--wheels", "/nonexistent"], "--wheels /nonexistent holds no .whl file"),
    (["--cert", "/nonexistent.crt"], "--cert /nonexistent.crt is not a file"),
    (["--registry"], "unknown option '--registry'"),
])
def test_build_image_refuses_bad_options(options, message) -> None:
    done = _build_image(*options)
    assert done.returncode != 0 and message in done.stderr and not done.stdout


def test_compose_starts_mlflow_on_postgres_with_artifacts_on_a_volume() -> None:
    spec = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    db, server = spec["services"]["db"], spec["services"]["mlflow"]
    assert db["image"].startswith("postgres:")
    assert (REPO / "docker" / server["build"]["dockerfile"]).is_file()
    assert server["depends_on"]["db"]["condition"] == "service_healthy"
    command = server["command"]
    assert command[:2] == ["mlflow", "server"]
    options = dict(zip(command[2::2], command[3::2], strict=True))
    assert re.fullmatch(r"postgresql://mlflow:.+@db:5432/mlflow", options["--backend-store-uri"])
    assert options["--port"] == "5000" and "5000:5000" in server["ports"]
    mounts = dict(volume.split(":") for volume in server["volumes"])
    assert options["--artifacts-destination"] in mounts.values()
    assert set(mounts) <= set(spec["volumes"])
